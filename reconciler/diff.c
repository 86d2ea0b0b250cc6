/* Field-by-field diff of two exported configurations (see diff.h).
 *
 * Internal functions return 0 or -1 (out of memory); the public entry point
 * turns -1 into out->error and an empty diff. */
#include "reconciler/diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/export.h"

/* The order kinds appear in a plan: what others refer to comes first, the
 * way it has to be created. */
static const char *const kind_order[] = {
    "Instance", "Certificate", "CertificateService", "TLSPolicy", "ServerGroup", "Listener",
};
#define N_KIND_ORDER (sizeof kind_order / sizeof kind_order[0])

/* Arrays of scalars whose order means nothing. */
static const char *const set_keys[] = {
    "addresses", "caCertificates", "codes",         "dnsNames", "extensionCertificates",
    "host",      "method",         "path",          "sourceIp", "tlsVersions",
    "trusted",   "values",         "removeHeaders",
};

void rc_diff_init(struct rc_diff *d)
{
    memset(d, 0, sizeof *d);
}

static void change_cleanup(struct rc_diff_change *ch)
{
    for (size_t i = 0; i < ch->n_fields; i++) {
        free(ch->fields[i].path);
        json_decref(ch->fields[i].old);
        json_decref(ch->fields[i].new);
    }
    free(ch->fields);
    free(ch->kind);
    free(ch->name);
    memset(ch, 0, sizeof *ch);
}

void rc_diff_cleanup(struct rc_diff *d)
{
    for (size_t i = 0; i < d->n_changes; i++)
        change_cleanup(&d->changes[i]);
    free(d->changes);
    rc_diff_init(d);
}

bool rc_diff_has_changes(const struct rc_diff *d)
{
    return d->n_changes > 0;
}

const char *rc_diff_action_name(enum rc_diff_action a)
{
    switch (a) {
    case RC_DIFF_CREATE:
        return "create";
    case RC_DIFF_UPDATE:
        return "update";
    case RC_DIFF_DELETE:
        break;
    }
    return "delete";
}

/* Appends one field; takes new references to old and new_ (either NULL). */
static int add_field(struct rc_diff_change *ch, const char *path, json_t *old, json_t *new_)
{
    if (ch->n_fields % 16 == 0) {
        struct rc_diff_field *v = realloc(ch->fields, (ch->n_fields + 16) * sizeof *v);
        if (v == NULL)
            return -1;
        ch->fields = v;
    }
    char *p = strdup(path);
    if (p == NULL)
        return -1;
    ch->fields[ch->n_fields++] = (struct rc_diff_field){p, json_incref(old), json_incref(new_)};
    return 0;
}

/* "base.key", or "key" when base is "". Returns malloc'd text or NULL. */
static char *path_key(const char *base, const char *key)
{
    char *p = NULL;
    if (asprintf(&p, "%s%s%s", base, base[0] != '\0' ? "." : "", key) < 0)
        return NULL;
    return p;
}

/* "base[sub]" */
static char *path_index(const char *base, const char *sub)
{
    char *p = NULL;
    if (asprintf(&p, "%s[%s]", base, sub) < 0)
        return NULL;
    return p;
}

static bool is_scalar(const json_t *j)
{
    return !json_is_object(j) && !json_is_array(j);
}

static bool all_scalars(const json_t *a)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!is_scalar(json_array_get(a, i)))
            return false;
    return true;
}

static bool is_set_key(const char *key)
{
    if (key == NULL)
        return false;
    for (size_t i = 0; i < sizeof set_keys / sizeof set_keys[0]; i++)
        if (strcmp(key, set_keys[i]) == 0)
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted union of the keys of a and b (either may be NULL), borrowed
 * from the objects. Returns the count, or -1 on OOM. */
static long union_keys(const json_t *a, const json_t *b, const char ***out)
{
    size_t n = json_object_size(a) + json_object_size(b), k = 0;
    const char **v = malloc((n > 0 ? n : 1) * sizeof *v);
    if (v == NULL)
        return -1;
    for (void *it = json_object_iter((json_t *)a); it != NULL;
         it = json_object_iter_next((json_t *)a, it))
        v[k++] = json_object_iter_key(it);
    for (void *it = json_object_iter((json_t *)b); it != NULL;
         it = json_object_iter_next((json_t *)b, it))
        v[k++] = json_object_iter_key(it);
    qsort(v, k, sizeof *v, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0)
            v[u++] = v[i];
    *out = v;
    return (long)u;
}

/* The identity of an element of the array named key, malloc'd; NULL when
 * the array has no identity or the element lacks it. *oom is set when NULL
 * comes from a failed allocation. */
static char *identity(const char *key, const json_t *e, bool *oom)
{
    char *id = NULL;
    if (key == NULL || !json_is_object(e))
        return NULL;
    if (strcmp(key, "servers") == 0) {
        const char *addr = json_string_value(json_object_get(e, "address"));
        const json_t *port = json_object_get(e, "port");
        if (addr == NULL || !json_is_integer(port))
            return NULL;
        const char *fmt = strchr(addr, ':') != NULL ? "[%s]:%lld" : "%s:%lld";
        if (asprintf(&id, fmt, addr, (long long)json_integer_value(port)) < 0) {
            *oom = true;
            return NULL;
        }
        return id;
    }
    if (strcmp(key, "rules") == 0 || strcmp(key, "serverGroups") == 0) {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name == NULL)
            return NULL;
        if ((id = strdup(name)) == NULL)
            *oom = true;
        return id;
    }
    return NULL;
}

struct keyed {
    char *id;
    json_t *elem;
};

static int cmp_keyed(const void *a, const void *b)
{
    return strcmp(((const struct keyed *)a)->id, ((const struct keyed *)b)->id);
}

static void keyed_free(struct keyed *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].id);
    free(v);
}

/* Indexes arr (may be NULL) by identity, sorted. Returns 1 and *out when
 * every element has a distinct identity, 0 when the array has no usable
 * identity, -1 on OOM. */
static int index_by_identity(const char *key, const json_t *arr, struct keyed **out)
{
    size_t n = json_array_size(arr);
    struct keyed *v = calloc(n > 0 ? n : 1, sizeof *v);
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool oom = false;
        v[i].elem = json_array_get(arr, i);
        v[i].id = identity(key, v[i].elem, &oom);
        if (v[i].id == NULL) {
            keyed_free(v, n);
            return oom ? -1 : 0;
        }
    }
    qsort(v, n, sizeof *v, cmp_keyed);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1].id, v[i].id) == 0) {
            keyed_free(v, n);
            return 0;
        }
    *out = v;
    return 1;
}

/* Sorted copy of an array of scalars: the canonical form of a set. */
static json_t *sorted_set(const json_t *a)
{
    size_t n = json_array_size(a);
    struct keyed *v = calloc(n > 0 ? n : 1, sizeof *v);
    json_t *out = json_array();
    if (v == NULL || out == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        v[i].elem = json_array_get(a, i);
        v[i].id = json_dumps(v[i].elem, JSON_ENCODE_ANY | JSON_COMPACT);
        if (v[i].id == NULL)
            goto fail;
    }
    qsort(v, n, sizeof *v, cmp_keyed);
    for (size_t i = 0; i < n; i++)
        if (json_array_append(out, v[i].elem) != 0)
            goto fail;
    keyed_free(v, n);
    return out;
fail:
    if (v != NULL)
        keyed_free(v, n);
    json_decref(out);
    return NULL;
}

/* Every leaf of j under path, on one side (create: new, delete: old).
 * key is the name j has in its parent (for identity arrays). */
static int flatten(struct rc_diff_change *ch, const char *path, const char *key, json_t *j,
                   bool is_new)
{
    if (json_is_object(j) && json_object_size(j) > 0) {
        const char **keys;
        long n = union_keys(j, NULL, &keys);
        if (n < 0)
            return -1;
        int rc = 0;
        for (long i = 0; i < n && rc == 0; i++) {
            char *p = path_key(path, keys[i]);
            rc = p != NULL ? flatten(ch, p, keys[i], json_object_get(j, keys[i]), is_new) : -1;
            free(p);
        }
        free(keys);
        return rc;
    }
    if (json_is_array(j) && !all_scalars(j)) {
        struct keyed *v = NULL;
        int have = index_by_identity(key, j, &v);
        if (have < 0)
            return -1;
        int rc = 0;
        for (size_t i = 0; i < json_array_size(j) && rc == 0; i++) {
            char num[24];
            snprintf(num, sizeof num, "%zu", i);
            char *p = path_index(path, have ? v[i].id : num);
            rc = p != NULL ? flatten(ch, p, NULL, have ? v[i].elem : json_array_get(j, i), is_new)
                           : -1;
            free(p);
        }
        if (have)
            keyed_free(v, json_array_size(j));
        return rc;
    }
    json_t *shown = j;
    if (json_is_array(j) && is_set_key(key) && (shown = sorted_set(j)) == NULL)
        return -1;
    int rc = add_field(ch, path, is_new ? NULL : shown, is_new ? shown : NULL);
    if (shown != j)
        json_decref(shown);
    return rc;
}

static int compare(struct rc_diff_change *ch, const char *path, const char *key, json_t *a,
                   json_t *b);

static int compare_objects(struct rc_diff_change *ch, const char *path, json_t *a, json_t *b)
{
    const char **keys;
    long n = union_keys(a, b, &keys);
    if (n < 0)
        return -1;
    int rc = 0;
    for (long i = 0; i < n && rc == 0; i++) {
        char *p = path_key(path, keys[i]);
        rc = p != NULL
                 ? compare(ch, p, keys[i], json_object_get(a, keys[i]), json_object_get(b, keys[i]))
                 : -1;
        free(p);
    }
    free(keys);
    return rc;
}

/* Both sides indexed by identity: a merge walk over the sorted ids. */
static int compare_keyed(struct rc_diff_change *ch, const char *path, struct keyed *va, size_t na,
                         struct keyed *vb, size_t nb)
{
    size_t i = 0, k = 0;
    while (i < na || k < nb) {
        int c = i == na ? 1 : k == nb ? -1 : strcmp(va[i].id, vb[k].id);
        char *p = path_index(path, c <= 0 ? va[i].id : vb[k].id);
        if (p == NULL)
            return -1;
        int rc = compare(ch, p, NULL, c <= 0 ? va[i].elem : NULL, c >= 0 ? vb[k].elem : NULL);
        free(p);
        if (rc != 0)
            return rc;
        if (c <= 0)
            i++;
        if (c >= 0)
            k++;
    }
    return 0;
}

static int compare_arrays(struct rc_diff_change *ch, const char *path, const char *key, json_t *a,
                          json_t *b)
{
    if (is_set_key(key) && all_scalars(a) && all_scalars(b)) {
        json_t *sa = sorted_set(a), *sb = sorted_set(b);
        int rc = sa != NULL && sb != NULL ? 0 : -1;
        if (rc == 0 && !json_equal(sa, sb))
            rc = add_field(ch, path, sa, sb);
        json_decref(sa);
        json_decref(sb);
        return rc;
    }
    struct keyed *va = NULL, *vb = NULL;
    int ha = index_by_identity(key, a, &va);
    int hb = ha > 0 ? index_by_identity(key, b, &vb) : 0;
    if (ha < 0 || hb < 0) {
        if (ha > 0)
            keyed_free(va, json_array_size(a));
        return -1;
    }
    if (ha > 0 && hb > 0) {
        int rc = compare_keyed(ch, path, va, json_array_size(a), vb, json_array_size(b));
        keyed_free(va, json_array_size(a));
        keyed_free(vb, json_array_size(b));
        return rc;
    }
    if (ha > 0)
        keyed_free(va, json_array_size(a));
    size_t n = json_array_size(a) > json_array_size(b) ? json_array_size(a) : json_array_size(b);
    for (size_t i = 0; i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", i);
        char *p = path_index(path, num);
        if (p == NULL)
            return -1;
        int rc = compare(ch, p, NULL, json_array_get(a, i), json_array_get(b, i));
        free(p);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* a (running) and b (desired) at path; either may be NULL (absent). What
 * appears or disappears as a whole is shown as one field with its whole
 * value: "spec.servers[10.0.0.2:80]: (none) → {...}". */
static int compare(struct rc_diff_change *ch, const char *path, const char *key, json_t *a,
                   json_t *b)
{
    if (a == NULL || b == NULL) {
        if (a == b)
            return 0;
        json_t *shown = a != NULL ? a : b;
        if (json_is_array(shown) && is_set_key(key) && all_scalars(shown)) {
            json_t *s = sorted_set(shown);
            int rc =
                s != NULL ? add_field(ch, path, a != NULL ? s : NULL, b != NULL ? s : NULL) : -1;
            json_decref(s);
            return rc;
        }
        return add_field(ch, path, a, b);
    }
    if (json_is_object(a) && json_is_object(b))
        return compare_objects(ch, path, a, b);
    if (json_is_array(a) && json_is_array(b))
        return compare_arrays(ch, path, key, a, b);
    if (json_equal(a, b))
        return 0;
    return add_field(ch, path, a, b);
}

/* Adds an empty change; returns it, NULL on OOM. */
static struct rc_diff_change *add_change(struct rc_diff *d, enum rc_diff_action action,
                                         const char *kind, const char *name)
{
    if (d->n_changes == d->cap) {
        size_t cap = d->cap != 0 ? d->cap * 2 : 16;
        struct rc_diff_change *v = realloc(d->changes, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        d->changes = v;
        d->cap = cap;
    }
    struct rc_diff_change *ch = &d->changes[d->n_changes];
    memset(ch, 0, sizeof *ch);
    ch->action = action;
    ch->kind = strdup(kind);
    ch->name = strdup(name);
    d->n_changes++;
    if (ch->kind == NULL || ch->name == NULL)
        return NULL;
    return ch;
}

static int diff_resource(struct rc_diff *d, const char *kind, const char *name, json_t *a,
                         json_t *b)
{
    enum rc_diff_action action = a == NULL   ? RC_DIFF_CREATE
                                 : b == NULL ? RC_DIFF_DELETE
                                             : RC_DIFF_UPDATE;
    struct rc_diff_change *ch = add_change(d, action, kind, name);
    if (ch == NULL)
        return -1;
    int rc = action == RC_DIFF_UPDATE ? compare_objects(ch, "", a, b)
                                      : flatten(ch, "", NULL, a != NULL ? a : b, a == NULL);
    if (rc != 0)
        return -1;
    if (action == RC_DIFF_UPDATE && ch->n_fields == 0) {
        change_cleanup(ch);
        d->n_changes--;
        return 0;
    }
    if (action == RC_DIFF_CREATE)
        d->n_create++;
    else if (action == RC_DIFF_UPDATE)
        d->n_update++;
    else
        d->n_delete++;
    return 0;
}

static int diff_kind(struct rc_diff *d, const char *kind, json_t *a, json_t *b)
{
    const char **names;
    long n = union_keys(a, b, &names);
    if (n < 0)
        return -1;
    int rc = 0;
    for (long i = 0; i < n && rc == 0; i++)
        rc = diff_resource(d, kind, names[i], json_object_get(a, names[i]),
                           json_object_get(b, names[i]));
    free(names);
    return rc;
}

static bool is_ordered_kind(const char *kind)
{
    for (size_t i = 0; i < N_KIND_ORDER; i++)
        if (strcmp(kind, kind_order[i]) == 0)
            return true;
    return false;
}

/* The "resources" object of an exported document, NULL with err set when
 * doc is not one. */
static json_t *resources_of(const json_t *doc, const char *which, char *err, size_t errlen)
{
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "%s configuration: not a JSON object", which);
        return NULL;
    }
    const char *api = json_string_value(json_object_get(doc, "apiVersion"));
    if (api == NULL || strcmp(api, RC_EXPORT_API_VERSION) != 0) {
        snprintf(err, errlen, "%s configuration: apiVersion is not \"%s\"", which,
                 RC_EXPORT_API_VERSION);
        return NULL;
    }
    json_t *res = json_object_get(doc, "resources");
    if (!json_is_object(res)) {
        snprintf(err, errlen, "%s configuration: \"resources\" is not an object", which);
        return NULL;
    }
    for (void *k = json_object_iter(res); k != NULL; k = json_object_iter_next(res, k)) {
        const char *kind = json_object_iter_key(k);
        json_t *byname = json_object_iter_value(k);
        if (!json_is_object(byname)) {
            snprintf(err, errlen, "%s configuration: resources.%.64s is not an object", which,
                     kind);
            return NULL;
        }
        for (void *r = json_object_iter(byname); r != NULL; r = json_object_iter_next(byname, r))
            if (!json_is_object(json_object_iter_value(r))) {
                snprintf(err, errlen, "%s configuration: %.64s/%.64s is not an object", which, kind,
                         json_object_iter_key(r));
                return NULL;
            }
    }
    return res;
}

int rc_diff_compute(const json_t *running, const json_t *desired, struct rc_diff *out)
{
    rc_diff_cleanup(out);
    json_t *ra = NULL, *rb;
    if (running != NULL &&
        (ra = resources_of(running, "running", out->error, sizeof out->error)) == NULL)
        return -1;
    if ((rb = resources_of(desired, "desired", out->error, sizeof out->error)) == NULL)
        return -1;

    int rc = 0;
    for (size_t i = 0; i < N_KIND_ORDER && rc == 0; i++)
        rc = diff_kind(out, kind_order[i], json_object_get(ra, kind_order[i]),
                       json_object_get(rb, kind_order[i]));
    const char **kinds = NULL;
    long n = rc == 0 ? union_keys(ra, rb, &kinds) : -1;
    for (long i = 0; i < n && rc == 0; i++)
        if (!is_ordered_kind(kinds[i]))
            rc = diff_kind(out, kinds[i], json_object_get(ra, kinds[i]),
                           json_object_get(rb, kinds[i]));
    free(kinds);
    if (rc != 0 || n < 0) {
        rc_diff_cleanup(out);
        snprintf(out->error, sizeof out->error, "out of memory");
        return -1;
    }
    return 0;
}
