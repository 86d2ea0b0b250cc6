/* Build passes with per-resource containment. The first pass builds every
 * document, exactly as a strict load does, and its errors are the ones
 * reported. When some resources are invalid, later passes build from a
 * selection: the new document of each valid resource, the source the
 * previous model kept for each invalid one (its last good version), or
 * nothing. A pass whose selection still fails (a valid resource that uses
 * one that is now absent, a kept version that no longer fits) moves the
 * failing resources one step down (new -> last good -> none) and runs
 * again; every pass moves at least one, so the passes end. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconciler/cert.h"
#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/loadset.h"
#include "reconciler/reuse.h"
#include "reconciler/rc.h"
#include "reconciler/schema.h"
#include "reconciler/sort.h"
#include "reconciler/source.h"

enum choice { USE_NONE, USE_NEW, USE_PREV };

/* The first problem of a resource, for its status. */
struct first_err {
    char *msg; /* malloc'd; NULL when none */
    char *file;
    int line, col;
};

/* One kind/name of the manifests or of the previous model: one per
 * resource of a load (10,000s), so kept small (72 bytes). */
struct res {
    const char *kind; /* static */
    const char *name;
    struct rc_doc *doc;           /* its new document, NULL when none counts */
    const struct rc_source *prev; /* its last good source, NULL when none */
    struct rc_doc *fallback;      /* prev parsed (lazily), NULL until needed */
    const struct res *needed_by;
    /* [NEW] of the new version, [PREV] of the last good one; NULL until
     * one is set (errp): most resources have none. */
    struct first_err *errs;
    enum choice choice;
    bool doc_damaged;  /* it has a document, in a file that does not parse */
    bool invalid;      /* the new version fails */
    bool prev_bad;     /* the last good version fails (or cannot be rebuilt) */
    bool file_damaged; /* prev's file did not parse: keep prev without a document */
    bool needed;       /* deleted, but a kept version uses it */
};

enum { NEW, PREV };

/* r's first problem of version which (NEW, PREV), allocated on first use. */
static struct first_err *errp(struct res *r, int which)
{
    if (r->errs == NULL && (r->errs = calloc(2, sizeof(*r->errs))) == NULL)
        abort(); /* as rc_errs_add: out of memory while reporting */
    return &r->errs[which];
}

/* Its message, or NULL. */
static const char *err_msg(const struct res *r, int which)
{
    return r->errs ? r->errs[which].msg : NULL;
}

struct ctx {
    struct rc_loadset *S;
    const struct rc_load_opts *o;
    const struct rc_sources *prev_src;
    struct res *res;
    size_t n_res;
    struct rc_doc **fallbacks; /* parsed sources, freed at the end */
    size_t n_fallbacks;
    SSL_CTX *scratch;
    size_t copied; /* sources (and resources) copied from prev */
};

/* ---- helpers ---- */

static int kind_name_cmp(const char *ka, const char *na, const char *kb, const char *nb)
{
    int c = ka == kb ? 0 : strcmp(ka, kb); /* kinds are static strings */
    return c ? c : strcmp(na, nb);
}

static struct res *find_res(struct ctx *C, const char *kind, const char *name)
{
    if (kind == NULL || name == NULL)
        return NULL;
    size_t lo = 0, hi = C->n_res;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = kind_name_cmp(C->res[mid].kind, C->res[mid].name, kind, name);
        if (c == 0)
            return &C->res[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The static kind string equal to kind, or NULL. */
static const char *static_kind(const char *kind)
{
    for (size_t i = 0; kind && rc_kinds[i]; i++)
        if (!strcmp(kind, rc_kinds[i]))
            return rc_kinds[i];
    return NULL;
}

static bool loc_before(const char *fa, int la, int ca, const char *fb, int lb, int cb)
{
    int c = strcmp(fa ? fa : "", fb ? fb : "");
    if (c)
        return c < 0;
    return la != lb ? la < lb : ca < cb;
}

static void set_err(struct first_err *e, const char *file, int line, int col, const char *path,
                    const char *msg)
{
    if (e->msg && !loc_before(file, line, col, e->file, e->line, e->col))
        return;
    char *m = NULL;
    if (path ? asprintf(&m, "%s: %s", path, msg) < 0 : (m = strdup(msg)) == NULL)
        abort(); /* as rc_errs_add: out of memory while reporting */
    free(e->msg);
    free(e->file);
    e->msg = m;
    e->file = file ? strdup(file) : NULL;
    if (file && e->file == NULL)
        abort();
    e->line = line;
    e->col = col;
}

static void set_err_from(struct first_err *e, const struct rc_err *x)
{
    set_err(e, x->file, x->line, x->col, x->path, x->msg);
}

static void free_err(struct first_err *e)
{
    free(e->msg);
    free(e->file);
}

static bool under_dir(const char *file, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(file, dir, n) && (file[n] == '/' || (n && dir[n - 1] == '/'));
}

/* ---- the universe of resources ---- */

static int doc_key_cmp(const void *a, const void *b)
{
    const struct rc_doc *x = *(struct rc_doc *const *)a, *y = *(struct rc_doc *const *)b;
    return kind_name_cmp(x->kind, x->name, y->kind, y->name);
}

/* r's document among those naming it: the first in file order (later ones
 * are duplicates, and errors), not one of a file that does not parse. */
static void res_take_doc(const struct rc_loadset *S, struct res *r, struct rc_doc *d)
{
    if (S->files[d->file_index].damaged) {
        r->doc_damaged = true;
        return;
    }
    if (r->doc == NULL || d->file_index < r->doc->file_index ||
        (d->file_index == r->doc->file_index &&
         (d->src_line < r->doc->src_line ||
          (d->src_line == r->doc->src_line && d->src_col < r->doc->src_col))))
        r->doc = d;
}

/* One struct res per kind/name of the documents and of prev's sources,
 * sorted by kind, then name: the documents' pointers sorted (they arrive
 * as a few sorted runs, rc_sort_runs) and merged with prev's sources,
 * which are in that order already (keep_sources writes them in C->res
 * order; rc_sources_find's binary search needs it too). Sorting pointers rather than a copy of
 * every key of both sides keeps the scratch at 16 bytes per document: the keys were ~1.3 MiB at
 * 10,000 certificates, beside everything else a reload holds. */
static int build_universe(struct ctx *C)
{
    struct rc_loadset *S = C->S;
    size_t np = C->prev_src ? C->prev_src->n : 0, nd = 0;
    struct rc_doc **dv = malloc((S->n_docs + 1) * sizeof(*dv));
    const struct rc_source *const *pv = C->prev_src ? C->prev_src->v : NULL;
    struct res *v = NULL;
    if (dv == NULL)
        return -1;
    for (size_t i = 0; i < S->n_docs; i++)
        if (S->docs[i]->kind && S->docs[i]->name)
            dv[nd++] = S->docs[i];
    if (rc_sort_runs(dv, nd, sizeof(*dv), doc_key_cmp) != 0)
        goto fail;
    /* Twice: to count the resources, then to write them. */
    size_t out = 0;
    for (int write = 0; write < 2; write++) {
        if (write && (v = malloc((out + 1) * sizeof(*v))) == NULL)
            goto fail;
        out = 0;
        for (size_t i = 0, j = 0; i < nd || j < np;) {
            int c = i == nd   ? 1
                    : j == np ? -1
                              : kind_name_cmp(dv[i]->kind, dv[i]->name, pv[j]->kind, pv[j]->name);
            struct res r = {.kind = c <= 0 ? dv[i]->kind : pv[j]->kind,
                            .name = c <= 0 ? dv[i]->name : pv[j]->name};
            for (; i < nd && !kind_name_cmp(r.kind, r.name, dv[i]->kind, dv[i]->name); i++)
                res_take_doc(S, &r, dv[i]);
            for (; j < np && !kind_name_cmp(r.kind, r.name, pv[j]->kind, pv[j]->name); j++)
                r.prev = pv[j];
            if (write)
                v[out] = r;
            out++;
        }
    }
    free(dv);
    C->res = v;
    C->n_res = out;
    return 0;
fail:
    free(dv);
    return -1;
}

/* Pass-1 errors: per resource, or per file when the document they concern
 * has no kind or name (or the file does not parse). */
static void attribute_first_pass(struct ctx *C, const struct rc_errs *errs)
{
    struct rc_loadset *S = C->S;
    /* The files whose problems reach beyond one resource (usually none). */
    size_t *bad = malloc((S->n_files + 1) * sizeof(*bad));
    struct first_err *ferr = calloc(S->n_files + 1, sizeof(*ferr));
    if (bad == NULL || ferr == NULL)
        abort(); /* as rc_errs_add: out of memory while reporting */
    size_t n_bad = 0;
    for (size_t f = 0; f < S->n_files; f++)
        if (S->files[f].damaged || S->files[f].unidentified)
            bad[n_bad++] = f;
    for (size_t i = S->errs_before; i < errs->n; i++) {
        const struct rc_err *x = &errs->v[i];
        if (x->severity != RC_ERROR)
            continue;
        struct res *r = find_res(C, static_kind(x->kind), x->name);
        if (r) {
            r->invalid = true;
            set_err_from(errp(r, NEW), x);
            continue;
        }
        for (size_t k = 0; x->file && k < n_bad; k++)
            if (!strcmp(S->files[bad[k]].path, x->file)) {
                set_err_from(&ferr[bad[k]], x);
                break;
            }
    }
    for (size_t i = 0; i < C->n_res; i++) {
        struct res *r = &C->res[i];
        if (r->doc_damaged && r->doc == NULL)
            r->invalid = true; /* its document is in a file that does not parse */
        if (r->prev == NULL || r->doc != NULL)
            continue;
        /* No usable document: deleted, unless the file prev had it from
         * cannot be read or parsed, or has a document we cannot identify. */
        for (size_t k = 0; k < n_bad; k++) {
            if (!strcmp(S->files[bad[k]].path, r->prev->file)) {
                const struct first_err *fe = &ferr[bad[k]];
                r->file_damaged = true;
                if (fe->msg)
                    set_err(errp(r, NEW), fe->file, fe->line, fe->col, NULL, fe->msg);
                break;
            }
        }
        for (size_t b = 0; !r->file_damaged && b < S->n_bad_dirs; b++)
            if (under_dir(r->prev->file, S->bad_dirs[b])) {
                r->file_damaged = true;
                set_err(errp(r, NEW), S->bad_dirs[b], 0, 0, NULL,
                        "its folder cannot be read; the last good version is kept");
            }
    }
    /* Resources whose only document is in a damaged file: that file's error. */
    for (size_t i = 0; n_bad && i < S->n_docs; i++) {
        struct rc_doc *d = S->docs[i];
        struct res *r = find_res(C, d->kind, d->name);
        if (r && r->doc == NULL && S->files[d->file_index].damaged && ferr[d->file_index].msg) {
            const struct first_err *fe = &ferr[d->file_index];
            set_err(errp(r, NEW), fe->file, fe->line, fe->col, NULL, fe->msg);
        }
    }
    for (size_t f = 0; f < S->n_files; f++)
        free_err(&ferr[f]);
    free(ferr);
    free(bad);
}

static void apply_forced(struct ctx *C)
{
    for (size_t i = 0; i < C->o->n_invalid; i++) {
        const struct rc_invalid *f = &C->o->invalid[i];
        struct res *r = find_res(C, static_kind(f->kind), f->name);
        if (r == NULL)
            continue;
        const char *file = r->doc ? r->doc->file_src : r->prev ? r->prev->file : NULL;
        int line = r->doc ? r->doc->src_line : r->prev ? r->prev->line : 0;
        int col = r->doc ? r->doc->src_col : r->prev ? r->prev->col : 0;
        const char *why = f->reason ? f->reason : "invalid";
        if (r->doc) {
            r->invalid = true;
            set_err(errp(r, NEW), file, line, col, NULL, why);
        }
        if (f->absent || r->doc == NULL) {
            r->prev_bad = true;
            set_err(errp(r, PREV), file, line, col, NULL, why);
        }
    }
}

static bool any_invalid(const struct ctx *C)
{
    for (size_t i = 0; i < C->n_res; i++)
        if (C->res[i].invalid || C->res[i].file_damaged || C->res[i].doc_damaged)
            return true;
    return false;
}

/* ---- selection and fallback documents ---- */

static void select_versions(struct ctx *C)
{
    for (size_t i = 0; i < C->n_res; i++) {
        struct res *r = &C->res[i];
        bool keep = r->invalid || r->file_damaged || r->needed || r->doc_damaged;
        if (r->doc && !r->invalid)
            r->choice = USE_NEW;
        else if (keep && r->prev && !r->prev_bad)
            r->choice = USE_PREV;
        else
            r->choice = USE_NONE;
    }
}

/* Parses r's kept source into a document. Returns 0, 1 when it cannot be
 * rebuilt (r->prev_bad is set), or -1 when out of memory. */
static int fallback_doc(struct ctx *C, struct res *r, struct rc_errs *scratch)
{
    if (r->fallback)
        return 0;
    const struct rc_source *p = r->prev;
    const struct rc_certificate *pc = NULL;
    if (!strcmp(r->kind, "Certificate")) {
        pc = rc_model_certificate(C->o->prev, r->name);
        if (pc == NULL) {
            r->prev_bad = true;
            set_err(errp(r, PREV), p->file, p->line, p->col, NULL,
                    "the last good version's certificate is not in the running model");
            return 1;
        }
    }
    /* Indent the first line as it was, so that columns match the file. */
    int pad = p->col > 1 ? p->col - 1 : 0;
    struct rc_doc **fb = realloc(C->fallbacks, (C->n_fallbacks + 1) * sizeof(*fb));
    if (fb == NULL)
        return -1;
    C->fallbacks = fb;
    char *text = rc_arena_alloc(C->S->tmp, (size_t)pad + p->len + 1);
    struct rc_doc *d = rc_arena_alloc(C->S->tmp, sizeof(*d));
    if (text == NULL || d == NULL)
        return -1;
    memset(text, ' ', (size_t)pad);
    memcpy(text + pad, p->text, p->len);
    struct rc_y_diag e;
    if (rc_y_prescan(text, (size_t)pad + p->len, &e) != 0) {
        r->prev_bad = true;
        set_err(errp(r, PREV), p->file, p->line, p->col, NULL,
                "the last good version's source does not parse");
        return 1;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, (size_t)pad + p->len);
    size_t budget = RC_Y_MAX_NODES;
    int lr = rc_doc_load_tree(d, &parser, &budget, &e);
    bool ok = lr == 1 && rc_doc_root(d) != NULL;
    if (lr == 1 && !ok)
        rc_doc_free_tree(d);
    yaml_parser_delete(&parser);
    if (lr < 0)
        return -1;
    if (!ok) {
        r->prev_bad = true;
        set_err(errp(r, PREV), p->file, p->line, p->col, NULL,
                "the last good version's source does not parse");
        return 1;
    }
    C->fallbacks[C->n_fallbacks++] = d;
    d->file = d->file_src = p->file;
    d->dir = p->dir;
    d->line_base = p->line - 1;
    d->src_text = p->text;
    d->src_len = p->len;
    d->src_line = p->line;
    d->src_col = p->col;
    d->fallback_cert = pc;
    d->file_index = SIZE_MAX;
    size_t before = scratch->n;
    rc_schema_validate_doc(d, scratch);
    if (scratch->n != before || d->kind != r->kind || d->name == NULL ||
        strcmp(d->name, r->name) != 0) {
        r->prev_bad = true;
        set_err(errp(r, PREV), p->file, p->line, p->col, NULL,
                "the last good version no longer passes the schema");
        return 1;
    }
    r->fallback = d;
    return 0;
}

/* ---- one build pass ---- */

static struct rc_model *model_new(void)
{
    struct rc_arena *a = rc_arena_new();
    struct rc_model *m = a ? rc_arena_alloc(a, sizeof(*m)) : NULL;
    if (m == NULL) {
        rc_arena_free(a);
        return NULL;
    }
    m->arena = a;
    m->refs = 1;
    return m;
}

/* Builds a model from dv. Returns the model or NULL when out of memory. */
static struct rc_model *build_pass(struct ctx *C, struct rc_load *L, struct rc_doc **dv, size_t n)
{
    struct rc_model *m = model_new();
    if (m == NULL)
        return NULL;
    /* The model's own arena holds its arrays; what its resources own goes
     * to a data arena that it holds, so that a later model copying some of
     * them keeps only their data alive, not these arrays. */
    struct rc_arena *data = rc_arena_new();
    if (data == NULL || rc_arena_hold(m->arena, data) != 0) {
        rc_arena_free(data);
        rc_model_unref(m);
        return NULL;
    }
    rc_arena_free(data); /* m->arena holds it */
    L->m = m;
    L->arena = data;
    rc_filecache_new_arena(L->files); /* copies made for another pass are not in data */
    L->dv = dv;
    L->n_dv = n;
    L->n_missing = 0;
    L->n_contained = 0;
    for (size_t i = 0; i < n; i++) {
        dv[i]->rules_contained = false; /* set again by this pass's rc_contain_rule */
        dv[i]->copy_local = false;      /* and by this pass's copies */
    }
    if (rc_build_model(L) != 0) {
        rc_model_unref(m);
        return NULL;
    }
    return m;
}

/* ---- the result: sources, digest, status ---- */

static int file_of(const struct rc_loadset *S, const char *path)
{
    size_t lo = 0, hi = S->n_files;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(S->files[mid].path, path);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Per manifest file, while keep_mfiles works out its record. */
struct mfile_facts {
    bool dirty;
    bool same_docs; /* its kept sources are its prev_mfile's, in order */
    bool all_home;  /* each kept source is home, in data (made by this load) */
    size_t nk;      /* its documents with a kept source */
};

/* The model's record of each manifest file (source.h rc_kept_mfile): a
 * file is clean when every one of its documents is a resource of m exactly
 * as written and no diagnostic of this load concerns it. An unchanged file
 * whose sources are all taken as they are takes prev's record too. */
static int keep_mfiles(struct ctx *C, const struct rc_errs *errs, struct rc_model *m,
                       struct rc_arena *data, struct rc_sources *s)
{
    const struct rc_loadset *S = C->S;
    s->mfiles = rc_arena_alloc(m->arena, (S->n_files + 1) * sizeof(*s->mfiles));
    struct mfile_facts *ff = calloc(S->n_files + 1, sizeof(*ff));
    if (s->mfiles == NULL || ff == NULL) {
        free(ff);
        return -1;
    }
    for (size_t i = 0; i < S->n_files; i++)
        ff[i].same_docs = ff[i].all_home = true;
    bool all_dirty = false;
    for (size_t i = S->errs_before; i < errs->n; i++) {
        const struct rc_err *e = &errs->v[i];
        if (rc_cert_is_expiry_warning(e))
            continue; /* a copy reports it again (cert.c): the file stays clean */
        int fi = e->file ? file_of(S, e->file) : -1;
        if (fi < 0 && e->kind && e->name) {
            const struct res *r = find_res(C, e->kind, e->name);
            if (r && r->doc && r->doc->file_index < S->n_files)
                fi = (int)r->doc->file_index;
        }
        if (fi >= 0)
            ff[fi].dirty = true;
        else
            all_dirty = true; /* not about one file: trust none */
    }
    for (size_t i = 0; i < S->n_docs; i++) {
        const struct rc_doc *d = S->docs[i];
        if (!d->kept || d->file_index >= S->n_files)
            continue;
        struct mfile_facts *x = &ff[d->file_index];
        const struct rc_kept_mfile *pm = S->files[d->file_index].prev_mfile;
        x->same_docs = x->same_docs && pm && x->nk < pm->n_docs && pm->docs[x->nk] == d->kept;
        x->all_home = x->all_home && d->kept->home && d->kept->origin == data;
        x->nk++;
    }
    /* The new records, filled below in document order. */
    struct rc_kept_mfile **fresh = calloc(S->n_files + 1, sizeof(*fresh));
    int rc = fresh ? 0 : -1;
    for (size_t i = 0; i < S->n_files && rc == 0; i++) {
        const struct rc_mfile *f = &S->files[i];
        const struct mfile_facts *x = &ff[i];
        bool clean =
            !all_dirty && !x->dirty && !f->damaged && !f->unidentified && x->nk == f->n_docs;
        const struct rc_kept_mfile *pm = f->prev_mfile;
        /* prev_mfile is set only when the file's identity is pm's and its
         * documents were taken from pm: the same bytes, length and digest. */
        if (clean && pm && pm->home && pm->clean && x->same_docs && x->nk == pm->n_docs &&
            f->settled == pm->settled && f->watchable == pm->watchable) {
            s->mfiles[s->n_mfiles++] = pm;
            continue;
        }
        /* Home when all its documents' sources were made by this load in
         * data: a model that takes them holds data. */
        bool home = clean && x->nk > 0 && x->all_home;
        struct rc_arena *at = home ? data : m->arena;
        struct rc_kept_mfile *k = rc_arena_alloc(at, sizeof(*k));
        if (k == NULL || (k->path = rc_arena_strdup(at, f->path)) == NULL) {
            rc = -1;
            break;
        }
        k->home = home;
        k->id = *rc_mfile_id(f);
        k->settled = f->settled;
        k->watchable = f->watchable;
        k->len = rc_mfile_len(f);
        memcpy(k->digest, rc_mfile_digest(f), sizeof(k->digest));
        k->clean = clean;
        if (k->clean && (k->docs = rc_arena_alloc(at, (f->n_docs + 1) * sizeof(*k->docs))) == NULL)
            rc = -1;
        s->mfiles[s->n_mfiles++] = k;
        fresh[i] = k;
    }
    for (size_t i = 0; i < S->n_docs && rc == 0; i++) {
        const struct rc_doc *d = S->docs[i];
        struct rc_kept_mfile *k = d->file_index < S->n_files ? fresh[d->file_index] : NULL;
        if (k && k->clean)
            k->docs[k->n_docs++] = d->kept;
        /* A home record's bytes in data count as its first document's
         * (reuse.h compaction weighs them), which this load made there. */
        if (k && k->home && k->n_docs == 1)
            ((struct rc_source *)d->kept)->bytes +=
                (uint32_t)(sizeof(*k) + strlen(k->path) + 1 +
                           (S->files[d->file_index].n_docs + 1) * sizeof(*k->docs));
    }
    free(fresh);
    free(ff);
    return rc;
}

static int keep_sources(struct ctx *C, const struct rc_load *L, const struct rc_errs *errs,
                        struct rc_model *m)
{
    struct rc_arena *a = L->arena; /* m's data arena (its last pass) */
    struct rc_sources *s = rc_arena_alloc(m->arena, sizeof(*s));
    if (s == NULL || (s->v = rc_arena_alloc(m->arena, (C->n_res + 1) * sizeof(*s->v))) == NULL)
        return -1;
    if (rc_filecache_keep(L->files, m, a, &s->kept) != 0)
        return -1;
    const char *last_file = NULL, *file = NULL, *last_dir = NULL, *dir = NULL;
    for (size_t i = 0; i < C->n_res; i++) {
        const struct res *r = &C->res[i];
        struct rc_source src;
        const struct rc_doc *d = NULL;
        if (r->choice == USE_NEW && r->doc->src_text) {
            d = r->doc;
            if (d->reused) {
                /* Copied from prev: so is its source, its strings in the
                 * same arena; the record itself when it says the same. */
                const struct rc_source *p = d->prev_src;
                C->copied++;
                if (p->home && !d->copy_local && d->built == p->res && d->src_line == p->line) {
                    s->v[s->n++] = r->doc->kept = p;
                    continue;
                }
                struct rc_source *o = rc_arena_alloc(m->arena, sizeof(*o));
                if (o == NULL)
                    return -1;
                *o = *p;
                o->home = false; /* lives with m, not in origin */
                o->res = d->copy_local ? NULL : d->built;
                o->line = d->src_line; /* where it is now (moved in its file) */
                s->v[s->n++] = r->doc->kept = o;
                continue;
            }
            src = (struct rc_source){.kind = r->kind,
                                     .name = r->name,
                                     .file = d->file_src,
                                     .dir = d->dir,
                                     .text = d->src_text,
                                     .len = d->src_len,
                                     .line = d->src_line,
                                     .col = d->src_col};
        } else if (r->choice == USE_PREV) {
            src = *r->prev;
            d = r->fallback;
        } else {
            continue;
        }
        size_t u0 = rc_arena_used(a);
        struct rc_source *o = rc_arena_alloc(a, sizeof(*o));
        if (o == NULL)
            return -1;
        s->v[s->n++] = o;
        *o = src;
        o->home = true;
        if (r->choice == USE_NEW)
            r->doc->kept = o;
        /* A listener built without a contained rule is not copied by the
         * next load: the rule's group may be valid by then. */
        o->res = d && !d->rules_contained ? d->built : NULL;
        o->origin = a;
        if (src.file != last_file) {
            last_file = src.file;
            file = rc_arena_strdup(a, src.file);
        }
        if (src.dir != last_dir) {
            last_dir = src.dir;
            dir = rc_arena_strdup(a, src.dir);
        }
        o->file = file;
        o->dir = dir;
        o->name = rc_arena_strdup(a, src.name);
        o->text = rc_arena_strndup(a, src.text, src.len);
        if (o->file == NULL || o->dir == NULL || o->name == NULL || o->text == NULL)
            return -1;
        size_t bytes = (d ? d->built_bytes : 0) + (rc_arena_used(a) - u0);
        o->bytes = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
    }
    if (keep_mfiles(C, errs, m, a, s) != 0)
        return -1;
    s->walk_reusable = C->S->walk_reused || C->S->walk_reusable;
    rc_arena_set_user(m->arena, s);
    return 0;
}

static enum rc_res_state state_of(const struct res *r)
{
    return r->choice == USE_NEW    ? RC_RES_READY
           : r->choice == USE_PREV ? RC_RES_KEPT
                                   : RC_RES_ABSENT;
}

/* Whether r counts at all: deleted resources are not listed. */
static bool listed(const struct res *r)
{
    return r->choice != USE_NONE || r->doc || r->doc_damaged || r->file_damaged;
}

/* A contained model's digest also says which resources were kept or left
 * out: the agent compares digests to skip applying an unchanged model. */
static void contained_digest(struct ctx *C, struct rc_model *m)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        memset(m->digest, '0', 64);
        m->digest[64] = '\0';
        return;
    }
    EVP_DigestUpdate(md, C->S->digest, 64);
    for (size_t i = 0; i < C->n_res; i++) {
        const struct res *r = &C->res[i];
        if (!listed(r) || r->choice == USE_NEW)
            continue;
        char line[32];
        snprintf(line, sizeof(line), "\n%d\n", (int)state_of(r));
        EVP_DigestUpdate(md, r->kind, strlen(r->kind));
        EVP_DigestUpdate(md, "/", 1);
        EVP_DigestUpdate(md, r->name, strlen(r->name));
        EVP_DigestUpdate(md, line, strlen(line));
        if (r->choice == USE_PREV)
            EVP_DigestUpdate(md, r->prev->text, r->prev->len);
    }
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, sum, &n);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < 32 && i < n; i++)
        snprintf(m->digest + 2 * i, 3, "%02x", sum[i]);
}

static void status_put(struct rc_status *st, const struct res *r, enum rc_res_state state,
                       char **pool)
{
    struct rc_res_status *e = &st->v[st->n++];
    e->kind = r->kind;
    size_t nl = strlen(r->name) + 1;
    e->name = memcpy(*pool, r->name, nl);
    *pool += nl;
    e->state = state;
    const struct first_err *fe = err_msg(r, NEW)    ? &r->errs[NEW]
                                 : err_msg(r, PREV) ? &r->errs[PREV]
                                                    : NULL;
    char *needed = NULL;
    if (state != RC_RES_READY && fe == NULL && r->needed_by &&
        asprintf(&needed, "deleted, but the last good version of %s/%s uses it", r->needed_by->kind,
                 r->needed_by->name) < 0)
        abort();
    if (state != RC_RES_READY && fe) {
        e->message = strdup(fe->msg);
        e->file = fe->file ? strdup(fe->file) : NULL;
        e->line = fe->line;
        e->col = fe->col;
    } else if (state != RC_RES_READY) {
        e->message =
            needed ? needed
                   : strdup(state == RC_RES_BLOCKED ? "not applied: --strict applies a change only "
                                                      "when all of it is valid"
                                                    : "invalid");
        needed = NULL;
    }
    free(needed);
    if (e->name == NULL || (state != RC_RES_READY && e->message == NULL))
        abort();
}

/* Frees the per-resource entries of st (not its counters). */
static void free_entries(struct rc_status *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free(st->v[i].message);
        free(st->v[i].file);
    }
    free(st->v);
    free(st->names);
    st->v = NULL;
    st->names = NULL;
    st->n = 0;
}

static void fill_status(struct ctx *C, struct rc_status *st, bool strict_failed)
{
    if (st == NULL)
        return;
    free_entries(st); /* the counters the load set stay */
    st->v = calloc(C->n_res + 1, sizeof(*st->v));
    /* The names in one block: 20,000 resources are not 20,000 mallocs per
     * load (and frees of the previous status). */
    size_t names = 1;
    for (size_t i = 0; i < C->n_res; i++)
        names += strlen(C->res[i].name) + 1;
    char *pool = st->names = malloc(names);
    if (st->v == NULL || pool == NULL)
        abort();
    for (size_t i = 0; i < C->n_res; i++) {
        const struct res *r = &C->res[i];
        if (!strict_failed) {
            if (listed(r))
                status_put(st, r, state_of(r), &pool);
            continue;
        }
        /* --strict and an error: nothing changes. */
        bool bad = r->invalid || r->doc_damaged || r->file_damaged;
        if (bad) {
            status_put(st, r, r->prev ? RC_RES_KEPT : RC_RES_ABSENT, &pool);
        } else if (r->doc) {
            bool same = r->prev && r->doc->src_text && r->prev->len == r->doc->src_len &&
                        !memcmp(r->prev->text, r->doc->src_text, r->doc->src_len);
            status_put(st, r, same ? RC_RES_READY : RC_RES_BLOCKED, &pool);
        }
    }
}

/* ---- the passes ---- */

/* Errors of a containment pass move resources down. Returns how many
 * changed, or -1 when an error concerns no known resource. */
static long attribute_pass(struct ctx *C, struct rc_load *L, struct rc_errs *scratch,
                           struct rc_errs *errs)
{
    long changed = 0;
    bool *skip = calloc(scratch->n + 1, sizeof(*skip));
    if (skip == NULL)
        abort();
    /* A kept version that uses a resource deleted since: keep that too. */
    for (size_t i = 0; i < L->n_missing; i++) {
        const struct rc_missing *mi = &L->missing[i];
        struct res *from = find_res(C, mi->from->kind, mi->from->name);
        struct res *to = find_res(C, mi->kind, mi->name);
        if (from && from->choice == USE_PREV && to && to->choice == USE_NONE && to->prev &&
            !to->prev_bad && !to->invalid && !to->needed) {
            to->needed = true;
            to->needed_by = from;
            changed++;
        }
        if (from && from->choice == USE_PREV && to && to->needed && mi->err_index < scratch->n)
            skip[mi->err_index] = true;
    }
    for (size_t i = 0; i < scratch->n; i++) {
        const struct rc_err *x = &scratch->v[i];
        if (x->severity != RC_ERROR || skip[i])
            continue;
        struct res *r = find_res(C, static_kind(x->kind), x->name);
        if (r == NULL || r->choice == USE_NONE) {
            free(skip);
            return -1;
        }
        if (r->choice == USE_NEW) {
            changed += !r->invalid;
            r->invalid = true;
            set_err_from(errp(r, NEW), x);
            /* It fails only because of what it depends on: say so too. */
            rc_errs_add(errs, RC_ERROR, &(struct rc_loc){x->file, x->line, x->col}, x->kind,
                        x->name, x->path, "%s", x->msg);
        } else {
            changed += !r->prev_bad;
            r->prev_bad = true;
            set_err_from(errp(r, PREV), x);
        }
    }
    free(skip);
    return changed;
}

/* The list of invalid resources without a version: references to them are
 * dependency failures. */
static struct rc_broken *broken_list(struct ctx *C, size_t *n)
{
    struct rc_broken *b = malloc((C->n_res + 1) * sizeof(*b));
    if (b == NULL)
        return NULL;
    *n = 0;
    for (size_t i = 0; i < C->n_res; i++) {
        const struct res *r = &C->res[i];
        if (r->choice == USE_NONE && listed(r))
            b[(*n)++] = (struct rc_broken){r->kind, r->name};
    }
    return b; /* res is sorted by kind, then name: so is b */
}

/* A warning for each rule the successful pass left out (rc_contain_rule),
 * at the rule, naming it, its group and why the group is invalid. */
static void report_contained_rules(struct ctx *C, const struct rc_load *L, struct rc_errs *errs)
{
    for (size_t i = 0; i < L->n_contained; i++) {
        const struct rc_contained_rule *k = &L->contained[i];
        const struct res *g = find_res(C, "ServerGroup", k->group);
        const char *why = g && err_msg(g, NEW)    ? err_msg(g, NEW)
                          : g && err_msg(g, PREV) ? err_msg(g, PREV)
                                                  : "invalid";
        char path[48];
        snprintf(path, sizeof path, "spec.rules[%zu]", k->index);
        rc_errs_add(errs, RC_WARNING, &k->loc, "Listener", k->d->name, path,
                    RC_RULE_CONTAINED_PREFIX
                    "rule %s (priority %d) refers to ServerGroup %s, which is "
                    "invalid and has no last good version (%s); the listener serves without "
                    "this rule: its requests go to the next matching rule or the default action",
                    k->rule, k->priority, k->group, why);
    }
}

static int contain_passes(struct ctx *C, struct rc_load *L, struct rc_errs *errs,
                          struct rc_model **out)
{
    struct rc_doc **dv = malloc((C->n_res + 1) * sizeof(*dv));
    if (dv == NULL)
        return -1;
    int rc = -1;
    /* Each pass moves at least one resource one of three steps down. */
    for (size_t guard = 0; guard <= 3 * C->n_res + 2; guard++) {
        struct rc_errs scratch;
        rc_errs_init(&scratch);
        select_versions(C);
        size_t n = 0;
        bool reselect = false;
        for (size_t i = 0; i < C->n_res; i++) {
            struct res *r = &C->res[i];
            if (r->choice == USE_NEW) {
                dv[n++] = r->doc;
            } else if (r->choice == USE_PREV) {
                int f = fallback_doc(C, r, &scratch);
                if (f < 0)
                    goto oom;
                if (f > 0)
                    reselect = true;
                else
                    dv[n++] = r->fallback;
            }
        }
        if (reselect) {
            rc_errs_cleanup(&scratch);
            continue;
        }
        struct rc_broken *broken = broken_list(C, &L->n_broken);
        if (broken == NULL)
            goto oom;
        L->broken = broken;
        L->errs = &scratch;
        L->pass++;
        struct rc_model *m = build_pass(C, L, dv, n);
        L->broken = NULL;
        free(broken);
        if (m == NULL)
            goto oom;
        if (rc_errs_count_errors(&scratch) == 0) {
            rc_errs_cleanup(&scratch);
            report_contained_rules(C, L, errs);
            *out = m;
            rc = 0;
            break;
        }
        rc_model_unref(m);
        long changed = attribute_pass(C, L, &scratch, errs);
        rc_errs_cleanup(&scratch);
        if (changed <= 0) {
            rc_errs_add(errs, RC_ERROR, NULL, NULL, NULL, NULL,
                        "internal error: invalid resources could not be contained");
            break;
        }
        continue;
    oom:
        rc_errs_cleanup(&scratch);
        break;
    }
    free(dv);
    return rc;
}

int rc_contain_build(struct rc_loadset *S, const struct rc_load_opts *o, struct rc_model **out,
                     struct rc_errs *errs, struct rc_status *st)
{
    struct ctx C = {.S = S, .o = o, .prev_src = rc_model_sources(o->prev)};
    struct rc_load L = {.errs = errs,
                        .now = o->now,
                        .prev = o->prev,
                        .pass = 1,
                        .cert_cache_dir = o->cert_cache_dir,
                        .cert_pending_is_error = o->cert_pending_is_error,
                        .keys_optional = o->keys_optional,
                        .release_parsed = o->release_parsed,
                        .defer_expiry = o->ready != NULL};
    struct rc_model *first = NULL, *m = NULL;
    int rc = -1;
    const struct rc_sources *prev_src = rc_model_sources(o->prev);
    struct timespec start;
    if (o->realtime)
        o->realtime(&start);
    else
        clock_gettime(CLOCK_REALTIME, &start);
    L.files = rc_filecache_new(prev_src ? &prev_src->kept : NULL, &start, S->root, o->changes);
    L.scratch = SSL_CTX_new(TLS_method());
    struct rc_reuse_plan plan;
    int prc = rc_reuse_plan(prev_src, &plan); /* sets plan, even when it fails */
    L.plan = &plan;
    if (prc != 0 || L.scratch == NULL || L.files == NULL)
        goto fail;
    SSL_CTX_set_security_level(L.scratch, 0);

    first = build_pass(&C, &L, S->docs, S->n_docs);
    if (first == NULL || build_universe(&C) != 0)
        goto fail;
    attribute_first_pass(&C, errs);
    apply_forced(&C);
    bool errors = any_invalid(&C);
    for (size_t i = S->errs_before; i < errs->n; i++)
        errors = errors || errs->v[i].severity == RC_ERROR;
    if (o->strict && errors) {
        for (size_t i = 0; i < C.n_res; i++)
            C.res[i].choice = C.res[i].prev ? USE_PREV : USE_NONE;
        if (st) {
            st->passes = 1;
            st->certs_parsed = L.certs_parsed;
            st->certs_reused = L.certs_reused;
            st->files_read = rc_filecache_n_read(L.files);
            st->files_reused = rc_filecache_n_reused(L.files);
            st->files_unstatted = rc_filecache_n_unstatted(L.files);
        }
        fill_status(&C, st, true);
        goto done;
    }
    if (!errors) {
        select_versions(&C);
        m = rc_model_ref(first);
        rc = 0;
    } else {
        L.contain = true;
        if (contain_passes(&C, &L, errs, &m) != 0)
            goto fail;
        rc = 1;
    }
    if (rc == 0)
        memcpy(m->digest, S->digest, sizeof(m->digest));
    else
        contained_digest(&C, m);
    if (S->model_root && (m->root = rc_arena_strdup(m->arena, S->model_root)) == NULL)
        goto fail;
    /* The model is complete: what follows is for reports and for the next
     * load, and waits until it serves (rc_load_opts.ready). */
    if (o->ready)
        o->ready(o->ready_arg, m);
    if (o->ready && o->late_expiry && m == first)
        rc_hand_late_expiry(&L, o->late_expiry); /* (load.h) */
    else
        rc_report_late_expiry(&L, errs);
    if (keep_sources(&C, &L, errs, m) != 0) {
        if (!o->ready)
            goto fail;
        /* The model serves: the next load builds everything again. */
        rc_arena_set_user(m->arena, NULL);
        rc_errs_add(errs, RC_WARNING, NULL, NULL, NULL, NULL,
                    "out of memory while keeping this load's records: the next load "
                    "reads every manifest and certificate again");
    }
    if (st) {
        st->resources_copied = C.copied;
        st->resources_compacted = L.compacted;
        st->passes = (unsigned)L.pass;
        st->certs_parsed = L.certs_parsed;
        st->certs_reused = L.certs_reused;
        st->files_read = rc_filecache_n_read(L.files);
        st->files_reused = rc_filecache_n_reused(L.files);
        st->files_unstatted = rc_filecache_n_unstatted(L.files);
    }
    fill_status(&C, st, false);
    *out = m;
    m = NULL;
    goto done;
fail:
    if (rc_errs_count_errors(errs) == 0 || first == NULL)
        rc_errs_add(errs, RC_ERROR, NULL, NULL, NULL, NULL,
                    "out of memory while loading manifests");
    rc = -1;
done:
    rc_report_late_expiry(&L, errs); /* (the paths that did not get there) */
    rc_reuse_plan_cleanup(&plan);
    rc_model_unref(m);
    rc_model_unref(first);
    SSL_CTX_free(L.scratch);
    rc_filecache_free(L.files);
    free(L.missing);
    free(L.contained);
    for (size_t i = 0; i < C.n_fallbacks; i++)
        rc_doc_free_tree(C.fallbacks[i]);
    free(C.fallbacks);
    for (size_t i = 0; i < C.n_res; i++) {
        if (C.res[i].errs) {
            free_err(&C.res[i].errs[NEW]);
            free_err(&C.res[i].errs[PREV]);
            free(C.res[i].errs);
        }
    }
    free(C.res);
    return rc;
}

/* ---- sources and status ---- */

const struct rc_sources *rc_model_sources(const struct rc_model *m)
{
    return m ? rc_arena_user(m->arena) : NULL;
}

const struct rc_source *rc_sources_find(const struct rc_sources *s, const char *kind,
                                        const char *name)
{
    size_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = kind_name_cmp(s->v[mid]->kind, s->v[mid]->name, kind, name);
        if (c == 0)
            return s->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void rc_status_init(struct rc_status *st)
{
    memset(st, 0, sizeof(*st));
}

void rc_status_cleanup(struct rc_status *st)
{
    if (st) {
        free_entries(st);
        rc_status_init(st);
    }
}

const char *rc_res_state_name(enum rc_res_state s)
{
    switch (s) {
    case RC_RES_READY:
        return "Ready";
    case RC_RES_KEPT:
        return "KeptLastGood";
    case RC_RES_ABSENT:
        return "Absent";
    case RC_RES_BLOCKED:
        return "Blocked";
    }
    return "?";
}

const struct rc_res_status *rc_status_find(const struct rc_status *st, const char *kind,
                                           const char *name)
{
    for (size_t i = 0; st && i < st->n; i++)
        if (!strcmp(st->v[i].kind, kind) && !strcmp(st->v[i].name, name))
            return &st->v[i];
    return NULL;
}
