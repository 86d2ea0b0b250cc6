/* Documents by kind and resolution of references by name (resolve.h). */
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/field.h"
#include "reconciler/resolve.h"
#include "reconciler/sort.h"

static int doc_name_cmp(const void *a, const void *b)
{
    return strcmp((*(struct rc_doc *const *)a)->name, (*(struct rc_doc *const *)b)->name);
}

/* By name, then by position in L->dv (kept in a parallel index). */
struct named {
    struct rc_doc *d;
    size_t pos;
};

static int named_cmp(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->d->name, y->d->name);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Many documents (certificates): the hash index rc_kind_find uses. The
 * names in v are unique, so it finds what the binary search would. */
static int index_names(struct rc_kind_docs *k)
{
    enum { INDEX_FROM = 64 };
    if (k->n < INDEX_FROM || k->n > UINT32_MAX / 4)
        return 0;
    size_t cap = 1;
    while (cap < k->n * 2)
        cap <<= 1;
    k->index = calloc(cap, sizeof(*k->index));
    if (k->index == NULL)
        return -1;
    k->index_cap = cap;
    for (size_t i = 0; i < k->n; i++) {
        size_t s = (size_t)cm_hash_str(k->v[i]->name) & (cap - 1);
        while (k->index[s])
            s = (s + 1) & (cap - 1);
        k->index[s] = (uint32_t)(i + 1);
    }
    return 0;
}

int rc_kind_collect(struct rc_load *L, const char *kind, struct rc_kind_docs *out)
{
    memset(out, 0, sizeof(*out));
    size_t n_extra = 0;
    for (size_t i = 0; i < L->n_broken; i++)
        n_extra += !strcmp(L->broken[i].kind, kind);
    size_t n_kind = 0;
    for (size_t i = 0; i < L->n_dv; i++) {
        const struct rc_doc *d = L->dv[i];
        n_kind += d->kind != NULL && !strcmp(d->kind, kind) && d->name != NULL;
    }
    /* Scratch of the build (rc_kind_docs_cleanup), sized for this kind. */
    out->v = malloc((n_kind + 1) * sizeof(*out->v));
    out->broken = malloc((n_kind + n_extra + 1) * sizeof(*out->broken));
    struct named *all = malloc((n_kind + 1) * sizeof(*all));
    bool *dup = calloc(L->n_dv + 1, sizeof(*dup));
    if (out->v == NULL || out->broken == NULL || all == NULL || dup == NULL) {
        free(all);
        free(dup);
        rc_kind_docs_cleanup(out);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < L->n_dv && n < n_kind; i++) {
        struct rc_doc *d = L->dv[i];
        if (d->kind != NULL && !strcmp(d->kind, kind) && d->name != NULL)
            all[n++] = (struct named){d, i};
    }
    /* Duplicates sit next to each other once sorted; the first written
     * one (lowest position) is the definition, later ones are errors. */
    rc_sort(all, n, sizeof(*all), named_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t first = i;
        while (first > 0 && !strcmp(all[first - 1].d->name, all[i].d->name))
            first--;
        if (first == i) {
            if (all[i].d->schema_ok)
                out->v[out->n++] = all[i].d;
            else
                out->broken[out->n_broken++] = all[i].d->name;
            continue;
        }
        dup[all[i].pos] = true;
        all[i].pos = all[first].pos; /* remember the definition for the message */
    }
    /* Report duplicates in source order, naming the first definition. */
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(all[i - 1].d->name, all[i].d->name))
            continue;
        struct rc_doc *d = all[i].d;
        struct rc_doc *first = L->dv[all[i].pos];
        if ((d->lazy && rc_doc_parse(d) != 0) || (first->lazy && rc_doc_parse(first) != 0)) {
            free(all);
            free(dup);
            rc_kind_docs_cleanup(out);
            return -1;
        }
        yaml_node_t *root = rc_doc_root(d);
        yaml_node_t *first_root = rc_doc_root(first);
        struct rc_loc fl = rc_y_loc(first, first_root);
        /* metadata.namespace does not make them two: one albd serves one
         * configuration, and references carry no namespace. */
        const char *ns = rc_y_str(rc_at(d, root, "metadata.namespace"));
        const char *first_ns = rc_y_str(rc_at(first, first_root, "metadata.namespace"));
        bool other_ns = (ns == NULL) != (first_ns == NULL) || (ns && strcmp(ns, first_ns) != 0);
        rc_doc_err(L, d, RC_ERROR, rc_at(d, root, "metadata.name"), "metadata.name",
                   "duplicate %s name \"%s\" (first defined at %s:%d:%d)%s", kind, d->name, fl.file,
                   fl.line, fl.col,
                   other_ns ? "; a namespace does not separate names: a name is unique per kind "
                              "in the manifest folder"
                            : "");
    }
    free(all);
    free(dup);
    for (size_t i = 0; i < L->n_broken; i++)
        if (!strcmp(L->broken[i].kind, kind))
            out->broken[out->n_broken++] = L->broken[i].name;
    /* Already sorted by name; the sort keeps this independent of that. */
    rc_sort(out->v, out->n, sizeof(*out->v), doc_name_cmp);
    rc_sort(out->broken, out->n_broken, sizeof(*out->broken), str_cmp);
    return index_names(out);
}

void rc_kind_docs_cleanup(struct rc_kind_docs *k)
{
    free(k->v);
    free(k->broken);
    free(k->index);
    memset(k, 0, sizeof(*k));
}

bool rc_kind_broken(const struct rc_kind_docs *k, const char *name)
{
    return k->n_broken &&
           bsearch(&name, k->broken, k->n_broken, sizeof(*k->broken), str_cmp) != NULL;
}

/* The index of the document named name in k (sorted by name), or -1. */
long rc_kind_find(const struct rc_kind_docs *k, const char *name)
{
    if (k->index) {
        for (size_t s = (size_t)cm_hash_str(name) & (k->index_cap - 1); k->index[s];
             s = (s + 1) & (k->index_cap - 1))
            if (!strcmp(k->v[k->index[s] - 1]->name, name))
                return (long)k->index[s] - 1;
        return -1;
    }
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(k->v[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* In a containment pass, a reference that does not resolve makes the
 * referring resource fail too (even when the target's own error was
 * reported), and is recorded so that a deleted resource which a kept
 * version still uses can be kept as well. */
void rc_missing_ref(struct rc_load *L, struct rc_doc *d, const yaml_node_t *v, const char *path,
                    const char *kind, const char *name, bool broken)
{
    if (L->n_missing == L->cap_missing) {
        size_t cap = L->cap_missing ? L->cap_missing * 2 : 16;
        struct rc_missing *p = realloc(L->missing, cap * sizeof(*p));
        if (p == NULL) {
            L->oom = true;
            return;
        }
        L->missing = p;
        L->cap_missing = cap;
    }
    L->missing[L->n_missing++] = (struct rc_missing){d, kind, name, L->errs->n};
    if (broken)
        rc_doc_err(L, d, RC_ERROR, v, path, "%s \"%s\" is invalid and has no last good version",
                   kind, name);
    else
        rc_doc_err(L, d, RC_ERROR, v, path, "no %s named \"%s\"", kind, name);
}

void rc_contain_rule(struct rc_load *L, struct rc_doc *d, const struct rc_rule *ru, size_t index,
                     const char *group)
{
    if (L->n_contained == L->cap_contained) {
        size_t cap = L->cap_contained ? L->cap_contained * 2 : 8;
        struct rc_contained_rule *p = realloc(L->contained, cap * sizeof(*p));
        if (p == NULL) {
            L->oom = true;
            return;
        }
        L->contained = p;
        L->cap_contained = cap;
    }
    d->rules_contained = true;
    L->contained[L->n_contained++] =
        (struct rc_contained_rule){d, ru->name, ru->priority, group, ru->loc, index};
}

/* Resolves the reference at node v (a name) to an index of k; reports an
 * unknown name. Returns the index or -1. */
long rc_resolve(struct rc_load *L, struct rc_doc *d, yaml_node_t *v, const char *path,
                const char *kind, const struct rc_kind_docs *k)
{
    const char *name = rc_y_str(v);
    if (name == NULL)
        return -1;
    long i = rc_kind_find(k, name);
    if (i >= 0)
        return i;
    if (L->contain)
        rc_missing_ref(L, d, v, path, kind, name, rc_kind_broken(k, name));
    else if (!rc_kind_broken(k, name))
        rc_doc_err(L, d, RC_ERROR, v, path, "no %s named \"%s\"", kind, name);
    return -1;
}
