/* A JSON Schema (2020-12 subset) validator that walks libyaml's node tree.
 * The schemas are parsed with jansson once per process; their "pattern"
 * regular expressions are compiled at the same time. */
#include "reconciler/schema.h"

#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "reconciler/doc.h"
#include "reconciler/err.h"

const char *const rc_kinds[] = {"Instance",  "Listener",    "Certificate", "CertificateService",
                                "TLSPolicy", "ServerGroup", NULL};

struct compiled_re {
    const json_t *src; /* the "pattern" string of a parsed schema */
    regex_t re;
    bool dns_label; /* it is DNS_LABEL: matched by is_dns_label() instead */
};

/* The pattern of every resource name (Document.json's $defs/name), which
 * a listener naming 10,000 certificates applies 10,000 times per reload:
 * matched by hand, the same strings as regexec in albd's C locale. */
#define DNS_LABEL "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

static bool is_dns_label(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
            return false;
    return n > 0 && s[0] != '-' && s[n - 1] != '-';
}

static struct {
    const char **names;
    json_t **schemas;
    size_t n;
    struct compiled_re *res;
    size_t n_res;
} S;
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;

static void collect_patterns(json_t *j, size_t *cap)
{
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) collect_patterns(v, cap);
        return;
    }
    if (!json_is_object(j))
        return;
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (!strcmp(k, "pattern") && json_is_string(v)) {
            if (S.n_res == *cap) {
                size_t ncap = *cap ? *cap * 2 : 32;
                struct compiled_re *p = realloc(S.res, ncap * sizeof(*p));
                if (p == NULL)
                    continue; /* falls back to compiling at use */
                S.res = p;
                *cap = ncap;
            }
            if (regcomp(&S.res[S.n_res].re, json_string_value(v), REG_EXTENDED | REG_NOSUB) == 0) {
                S.res[S.n_res].dns_label = !strcmp(json_string_value(v), DNS_LABEL);
                S.res[S.n_res++].src = v;
            }
        } else {
            collect_patterns(v, cap);
        }
    }
}

static void schemas_load(void)
{
    size_t n = 0;
    while (rc_schema_texts[n].name)
        n++;
    S.names = calloc(n ? n : 1, sizeof(*S.names));
    S.schemas = calloc(n ? n : 1, sizeof(*S.schemas));
    if (S.names == NULL || S.schemas == NULL)
        return;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *j = json_loads(rc_schema_texts[i].json, 0, &jerr);
        if (j == NULL)
            continue; /* a broken schema file: the unit tests catch it */
        S.names[S.n] = rc_schema_texts[i].name;
        S.schemas[S.n] = j;
        S.n++;
        collect_patterns(j, &cap);
    }
}

const json_t *rc_schema_get(const char *name)
{
    pthread_once(&schemas_once, schemas_load);
    for (size_t i = 0; i < S.n; i++)
        if (!strcmp(S.names[i], name))
            return S.schemas[i];
    return NULL;
}

/* The keywords validate() and validate_scalar() look up in every schema
 * they apply: with a cache (a list of many items), each schema object's
 * are looked up once per document rather than once per item. */
enum kw_id {
    KW_REF,
    KW_TYPE,
    KW_CONST,
    KW_ENUM,
    KW_ALLOF,
    KW_ANYOF,
    KW_ONEOF,
    KW_MINLEN,
    KW_MAXLEN,
    KW_PATTERN,
    KW_N
};
static const char *const kw_names[KW_N] = {"$ref",  "type",  "const",     "enum",      "allOf",
                                           "anyOf", "oneOf", "minLength", "maxLength", "pattern"};
struct kw_entry {
    const json_t *schema;
    const json_t *v[KW_N];
};
enum { KW_CACHE = 32, KW_CACHE_FROM = 64 /* items in a list */ };

/* Validation state for one document. */
struct vctx {
    const struct rc_doc *doc;
    yaml_document_t *y;
    struct rc_errs *errs;
    const char *kind, *name;
    char path[512];
    size_t plen;
    size_t n_err;
    int depth;
    bool truncated;          /* errors past MAX_SHOWN were counted, not kept */
    struct rc_loc hidden_at; /* where the first of them is */
    /* Nodes validate may still visit: a tree's nodes are each visited
     * about once (every manifest in tests/data: at most 0.93 visits per
     * node, alternatives included); a
     * document whose nodes are shared (aliases, which rc_y_load refuses)
     * would be walked without end. A second line of defence. */
    size_t visits_left;
    bool exhausted;
    /* The last $ref resolved (from root): the items of a list all name
     * the same one. */
    const json_t *ref_key, *ref_root, *ref_target, *ref_target_root;
    struct kw_entry *kw; /* KW_CACHE entries, or NULL: looked up each time */
};

/* Keyword id of schema (an object), through c's cache when it has one. */
static const json_t *kw(struct vctx *c, const json_t *schema, enum kw_id id)
{
    if (c->kw == NULL)
        return json_object_get(schema, kw_names[id]);
    struct kw_entry *e = &c->kw[((uintptr_t)schema / sizeof(void *)) % KW_CACHE];
    if (e->schema != schema) {
        e->schema = schema;
        for (int i = 0; i < KW_N; i++)
            e->v[i] = json_object_get(schema, kw_names[i]);
    }
    return e->v[id];
}

/* Errors kept per document: a list of a million wrong items must not
 * become a million log lines (the count still says whether it is valid). */
#define MAX_SHOWN 100

static void verr(struct vctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verr(struct vctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    if (c->n_err >= MAX_SHOWN) {
        c->n_err++;
        if (!c->truncated)
            c->hidden_at = rc_y_loc(c->doc, n);
        c->truncated = true;
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct rc_loc loc = rc_y_loc(c->doc, n);
    rc_errs_add(c->errs, RC_ERROR, &loc, c->kind, c->name, c->path, "%s", msg);
    c->n_err++;
}

static size_t push_key(struct vctx *c, const char *key)
{
    size_t old = c->plen;
    int w = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s", c->plen ? "." : "", key);
    if (w > 0)
        c->plen = c->plen + (size_t)w < sizeof(c->path) ? c->plen + (size_t)w : sizeof(c->path) - 1;
    return old;
}

static size_t push_index(struct vctx *c, size_t i)
{
    /* By hand: once per item of every list (10,000 certificate names). */
    size_t old = c->plen, i0 = i;
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    if (c->plen + n + 2 >= sizeof(c->path)) { /* cut short, as snprintf cuts it */
        snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", i0);
        c->plen = sizeof(c->path) - 1;
        return old;
    }
    char *p = c->path + c->plen;
    *p++ = '[';
    while (n)
        *p++ = digits[--n];
    *p++ = ']';
    *p = '\0';
    c->plen = (size_t)(p - c->path);
    return old;
}

static void pop(struct vctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

/* A scalar as it may appear in a message: quoted strings, bare numbers,
 * shortened, and never a PEM block (keys must not reach messages). */
static const char *show(const yaml_node_t *n, char *buf, size_t size)
{
    struct rc_yval v;
    rc_y_classify(n, &v);
    if (v.type == RC_Y_MAP)
        return "an object";
    if (v.type == RC_Y_SEQ)
        return "an array";
    const char *s = rc_y_str(n);
    if (strstr(s, "-----BEGIN") || strstr(s, "PRIVATE KEY"))
        return "a PEM block";
    if (v.type == RC_Y_STR)
        snprintf(buf, size, "\"%.60s%s\"", s, strlen(s) > 60 ? "..." : "");
    else
        snprintf(buf, size, "%.60s", s);
    return buf;
}

static void show_json(const json_t *j, char *buf, size_t size)
{
    if (json_is_string(j))
        snprintf(buf, size, "%s", json_string_value(j));
    else if (json_is_integer(j))
        snprintf(buf, size, "%lld", (long long)json_integer_value(j));
    else if (json_is_real(j))
        snprintf(buf, size, "%g", json_real_value(j));
    else if (json_is_true(j))
        snprintf(buf, size, "true");
    else if (json_is_false(j))
        snprintf(buf, size, "false");
    else
        snprintf(buf, size, "null");
}

static bool json_equals_node(const json_t *j, const yaml_node_t *n)
{
    struct rc_yval v;
    rc_y_classify(n, &v);
    switch (json_typeof(j)) {
    case JSON_STRING:
        return v.type == RC_Y_STR && !strcmp(json_string_value(j), rc_y_str(n));
    case JSON_INTEGER:
        return (v.type == RC_Y_INT && v.i == json_integer_value(j)) ||
               (v.type == RC_Y_FLOAT && v.d == (double)json_integer_value(j));
    case JSON_REAL:
        return (v.type == RC_Y_INT || v.type == RC_Y_FLOAT) && v.d == json_real_value(j);
    case JSON_TRUE:
        return v.type == RC_Y_BOOL && v.b;
    case JSON_FALSE:
        return v.type == RC_Y_BOOL && !v.b;
    case JSON_NULL:
        return v.type == RC_Y_NULL;
    default:
        return false;
    }
}

/* Whether a node classified as v (rc_y_classify) is of JSON type t. */
static bool type_matches(const char *t, const struct rc_yval *v)
{
    if (!strcmp(t, "object"))
        return v->type == RC_Y_MAP;
    if (!strcmp(t, "array"))
        return v->type == RC_Y_SEQ;
    if (!strcmp(t, "string"))
        return v->type == RC_Y_STR;
    if (!strcmp(t, "integer"))
        return v->type == RC_Y_INT || (v->type == RC_Y_FLOAT && v->d > -9e18 && v->d < 9e18 &&
                                       (double)(long long)v->d == v->d);
    if (!strcmp(t, "number"))
        return v->type == RC_Y_INT || v->type == RC_Y_FLOAT;
    if (!strcmp(t, "boolean"))
        return v->type == RC_Y_BOOL;
    if (!strcmp(t, "null"))
        return v->type == RC_Y_NULL;
    return false;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest known property to a misspelt one, or NULL if none is close. */
static const char *did_you_mean(const json_t *props, const char *key)
{
    const char *best = NULL;
    size_t best_d = 99;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v)
    {
        size_t d = edit_distance(key, k);
        if (d < best_d) {
            best_d = d;
            best = k;
        }
    }
    size_t len = strlen(key);
    size_t limit = len <= 6 ? 2 : 3;
    return best_d <= limit ? best : NULL;
}

static bool pattern_matches(const json_t *pat, const char *s)
{
    for (size_t i = 0; i < S.n_res; i++)
        if (S.res[i].src == pat)
            return S.res[i].dns_label ? is_dns_label(s) : regexec(&S.res[i].re, s, 0, NULL, 0) == 0;
    regex_t re; /* a schema that was not embedded (tests): compile now */
    if (regcomp(&re, json_string_value(pat), REG_EXTENDED | REG_NOSUB) != 0)
        return true;
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static const json_t *resolve_ref(const json_t *root, const char *ref, const json_t **new_root)
{
    const char *hash = strchr(ref, '#');
    *new_root = root;
    if (hash != ref) {
        char file[128];
        size_t n = hash ? (size_t)(hash - ref) : strlen(ref);
        if (n >= sizeof(file))
            return NULL;
        memcpy(file, ref, n);
        file[n] = '\0';
        char *dot = strstr(file, ".json");
        if (dot)
            *dot = '\0';
        *new_root = rc_schema_get(file);
        if (*new_root == NULL)
            return NULL;
        if (hash == NULL)
            return *new_root;
    }
    /* "#/$defs/name" (one level is all the schemas use) or "#" */
    const char *ptr = hash + 1;
    if (*ptr == '\0')
        return *new_root;
    if (strncmp(ptr, "/$defs/", 7) != 0)
        return NULL;
    return json_object_get(json_object_get(*new_root, "$defs"), ptr + 7);
}

static void validate(struct vctx *c, const json_t *root, const json_t *schema, yaml_node_t *node);

/* Validates into a scratch list; returns the errors found (caller frees). */
static size_t try_schema(struct vctx *c, const json_t *root, const json_t *schema,
                         yaml_node_t *node, struct rc_errs *scratch)
{
    struct rc_errs *saved = c->errs;
    size_t saved_n = c->n_err;
    bool saved_trunc = c->truncated;
    rc_errs_init(scratch);
    c->errs = scratch;
    c->n_err = 0;
    validate(c, root, schema, node);
    size_t found = c->n_err;
    c->errs = saved;
    c->n_err = saved_n;
    c->truncated = saved_trunc;
    return found;
}

static void adopt(struct vctx *c, struct rc_errs *scratch)
{
    for (size_t i = 0; i < scratch->n; i++) {
        struct rc_err *e = &scratch->v[i];
        if (c->n_err >= MAX_SHOWN) {
            c->n_err++;
            if (!c->truncated)
                c->hidden_at = (struct rc_loc){c->doc->file, e->line, e->col};
            c->truncated = true;
            continue;
        }
        struct rc_loc loc = {e->file, e->line, e->col};
        rc_errs_add(c->errs, e->severity, &loc, e->kind, e->name, e->path, "%s", e->msg);
        c->n_err++;
    }
}

static void validate_combinator(struct vctx *c, const json_t *root, const json_t *list,
                                yaml_node_t *node, bool one)
{
    size_t i, matched = 0, best_n = (size_t)-1;
    json_t *sub;
    struct rc_errs best = {0};
    json_array_foreach(list, i, sub)
    {
        struct rc_errs scratch;
        size_t n = try_schema(c, root, sub, node, &scratch);
        if (n == 0)
            matched++;
        if (n < best_n) {
            rc_errs_cleanup(&best);
            best = scratch;
            best_n = n;
        } else {
            rc_errs_cleanup(&scratch);
        }
    }
    if (matched == 0 && best_n != (size_t)-1)
        adopt(c, &best); /* the closest alternative explains best what is wrong */
    else if (one && matched > 1)
        verr(c, node, "matches more than one of the allowed forms");
    rc_errs_cleanup(&best);
}

/* first[i] = the position of the first of v[0..n) equal to v[i] (i itself
 * when none before it is; SIZE_MAX when v[i] is NULL), in one pass over an
 * open-addressing table of each value's first position (a listener's
 * 10,000 certificate names were sorted on every reload before). Returns 0
 * or -1 when out of memory. */
static int first_equal(const char *const *v, size_t n, size_t *first)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    size_t *slot = calloc(cap, sizeof(*slot)); /* position + 1; 0: empty */
    if (slot == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        first[i] = SIZE_MAX;
        if (v[i] == NULL)
            continue;
        for (size_t h = (size_t)cm_hash_str(v[i]) & (cap - 1);; h = (h + 1) & (cap - 1)) {
            if (slot[h] == 0) {
                slot[h] = i + 1;
                first[i] = i;
                break;
            }
            if (!strcmp(v[slot[h] - 1], v[i])) {
                first[i] = slot[h] - 1;
                break;
            }
        }
    }
    free(slot);
    return 0;
}

static void validate_object(struct vctx *c, const json_t *root, const json_t *schema,
                            yaml_node_t *node)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *addl = json_object_get(schema, "additionalProperties");
    const json_t *names = json_object_get(schema, "propertyNames");
    yaml_node_pair_t *start = node->data.mapping.pairs.start, *top = node->data.mapping.pairs.top;
    size_t count = (size_t)(top - start);
    const char **keys = calloc(count ? count : 1, sizeof(*keys));
    size_t *first = calloc(count ? count : 1, sizeof(*first));
    if (keys == NULL || first == NULL) {
        free(keys);
        free(first);
        verr(c, node, "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++)
        keys[i] = rc_y_str(yaml_document_get_node(c->y, start[i].key));
    if (first_equal(keys, count, first) != 0) {
        free(keys);
        free(first);
        verr(c, node, "out of memory");
        return;
    }

    for (yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->y, p->key);
        yaml_node_t *v = yaml_document_get_node(c->y, p->value);
        const char *key = rc_y_str(k);
        if (key == NULL) {
            verr(c, k, "field names must be strings");
            continue;
        }
        size_t at = (size_t)(p - start);
        bool dup = first[at] != SIZE_MAX && first[at] != at;
        size_t old = push_key(c, key);
        if (dup) {
            verr(c, k, "duplicate field");
            pop(c, old);
            continue;
        }
        if (names)
            validate(c, root, names, k);
        const json_t *sub = props ? json_object_get(props, key) : NULL;
        if (sub) {
            validate(c, root, sub, v);
        } else if (json_is_false(addl)) {
            const char *hint = props ? did_you_mean(props, key) : NULL;
            if (hint)
                verr(c, k, "unknown field (did you mean \"%s\"?)", hint);
            else
                verr(c, k, "unknown field");
        } else if (json_is_object(addl)) {
            validate(c, root, addl, v);
        }
        pop(c, old);
    }
    free(keys);
    free(first);

    const json_t *req = json_object_get(schema, "required");
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r)
    {
        if (json_is_string(r) && rc_y_get_key(c->y, node, json_string_value(r)) == NULL)
            verr(c, node, "missing required field \"%s\"", json_string_value(r));
    }
    const json_t *minp = json_object_get(schema, "minProperties");
    const json_t *maxp = json_object_get(schema, "maxProperties");
    if (json_is_integer(minp) && (json_int_t)count < json_integer_value(minp))
        verr(c, node, "has %zu field%s, at least %lld required", count, count == 1 ? "" : "s",
             (long long)json_integer_value(minp));
    if (json_is_integer(maxp) && (json_int_t)count > json_integer_value(maxp))
        verr(c, node, "has %zu fields, at most %lld allowed", count,
             (long long)json_integer_value(maxp));
}

static void validate_array(struct vctx *c, const json_t *root, const json_t *schema,
                           yaml_node_t *node)
{
    yaml_node_item_t *start = node->data.sequence.items.start, *top = node->data.sequence.items.top;
    size_t count = (size_t)(top - start);
    const json_t *items = json_object_get(schema, "items");
    if (items && count >= KW_CACHE_FROM && c->kw == NULL)
        c->kw = calloc(KW_CACHE, sizeof *c->kw); /* NULL: looked up each time */
    if (items) {
        for (yaml_node_item_t *it = start; it < top; it++) {
            size_t old = push_index(c, (size_t)(it - start));
            validate(c, root, items, yaml_document_get_node(c->y, *it));
            pop(c, old);
        }
    }
    const json_t *mini = json_object_get(schema, "minItems");
    const json_t *maxi = json_object_get(schema, "maxItems");
    if (json_is_integer(mini) && (json_int_t)count < json_integer_value(mini))
        verr(c, node, "has %zu item%s, at least %lld required", count, count == 1 ? "" : "s",
             (long long)json_integer_value(mini));
    if (json_is_integer(maxi) && (json_int_t)count > json_integer_value(maxi))
        verr(c, node, "has %zu items, at most %lld allowed", count,
             (long long)json_integer_value(maxi));
    if (json_is_true(json_object_get(schema, "uniqueItems")) && count > 1) {
        char **canon = calloc(count, sizeof(*canon));
        if (canon == NULL)
            return;
        size_t *first = calloc(count, sizeof(*first));
        /* A list of strings (certificate names): two items are the same
         * exactly when their texts are, as their canonical forms (quoted
         * strings) would say — compared as they are, without a copy. */
        bool strings = true;
        for (size_t i = 0; strings && i < count; i++) {
            struct rc_yval v;
            yaml_node_t *n = yaml_document_get_node(c->y, start[i]);
            rc_y_classify(n, &v);
            strings = v.type == RC_Y_STR && n->type == YAML_SCALAR_NODE;
        }
        for (size_t i = 0; first && !strings && i < count; i++)
            canon[i] = rc_y_canonical(c->y, yaml_document_get_node(c->y, start[i]), NULL);
        for (size_t i = 0; first && strings && i < count; i++)
            canon[i] = (char *)rc_y_str(yaml_document_get_node(c->y, start[i]));
        if (first && first_equal((const char *const *)canon, count, first) == 0) {
            for (size_t i = 1; i < count; i++) {
                if (first[i] != SIZE_MAX && first[i] != i) {
                    size_t old = push_index(c, i);
                    verr(c, yaml_document_get_node(c->y, start[i]), "duplicates item [%zu]",
                         first[i]);
                    pop(c, old);
                }
            }
        }
        for (size_t i = 0; !strings && i < count; i++)
            free(canon[i]);
        free(canon);
        free(first);
    }
}

static void validate_scalar(struct vctx *c, const json_t *schema, yaml_node_t *node,
                            const struct rc_yval *vp)
{
    struct rc_yval v = *vp;
    char sv[96];
    if (v.type == RC_Y_INT || v.type == RC_Y_FLOAT) {
        const json_t *min = json_object_get(schema, "minimum");
        const json_t *max = json_object_get(schema, "maximum");
        const json_t *xmin = json_object_get(schema, "exclusiveMinimum");
        const json_t *xmax = json_object_get(schema, "exclusiveMaximum");
        char lim[64];
        if (json_is_number(min) && v.d < json_number_value(min)) {
            show_json(min, lim, sizeof(lim));
            verr(c, node, "%s is below the minimum %s", show(node, sv, sizeof(sv)), lim);
        }
        if (json_is_number(max) && v.d > json_number_value(max)) {
            show_json(max, lim, sizeof(lim));
            verr(c, node, "%s is above the maximum %s", show(node, sv, sizeof(sv)), lim);
        }
        if (json_is_number(xmin) && v.d <= json_number_value(xmin)) {
            show_json(xmin, lim, sizeof(lim));
            verr(c, node, "%s must be above %s", show(node, sv, sizeof(sv)), lim);
        }
        if (json_is_number(xmax) && v.d >= json_number_value(xmax)) {
            show_json(xmax, lim, sizeof(lim));
            verr(c, node, "%s must be below %s", show(node, sv, sizeof(sv)), lim);
        }
    }
    if (v.type == RC_Y_STR) {
        const char *s = rc_y_str(node);
        size_t len = utf8_len(s);
        const json_t *minl = kw(c, schema, KW_MINLEN);
        const json_t *maxl = kw(c, schema, KW_MAXLEN);
        const json_t *pat = kw(c, schema, KW_PATTERN);
        if (json_is_integer(minl) && (json_int_t)len < json_integer_value(minl)) {
            if (len == 0)
                verr(c, node, "must not be empty");
            else
                verr(c, node, "%s is shorter than %lld characters", show(node, sv, sizeof(sv)),
                     (long long)json_integer_value(minl));
        }
        if (json_is_integer(maxl) && (json_int_t)len > json_integer_value(maxl))
            verr(c, node, "is longer than %lld characters (%zu)",
                 (long long)json_integer_value(maxl), len);
        if (json_is_string(pat) && !pattern_matches(pat, s))
            verr(c, node, "%s does not match the pattern %s", show(node, sv, sizeof(sv)),
                 json_string_value(pat));
    }
}

static void validate(struct vctx *c, const json_t *root, const json_t *schema, yaml_node_t *node)
{
    if (node == NULL || schema == NULL || json_is_true(schema))
        return;
    if (json_is_false(schema)) {
        verr(c, node, "not allowed here");
        return;
    }
    if (!json_is_object(schema) || c->depth > 64)
        return;
    if (c->visits_left == 0) {
        c->exhausted = true;
        return;
    }
    c->visits_left--;
    c->depth++;

    const json_t *ref = kw(c, schema, KW_REF);
    if (json_is_string(ref)) {
        const json_t *target_root, *target;
        if (ref == c->ref_key && root == c->ref_root) {
            target = c->ref_target;
            target_root = c->ref_target_root;
        } else {
            target = resolve_ref(root, json_string_value(ref), &target_root);
            c->ref_key = ref;
            c->ref_root = root;
            c->ref_target = target;
            c->ref_target_root = target_root;
        }
        if (target)
            validate(c, target_root, target, node);
        else
            verr(c, node, "schema error: unresolved $ref %s", json_string_value(ref));
    }

    char sv[96];
    /* Classified once for every keyword below. */
    struct rc_yval v;
    rc_y_classify(node, &v);
    const json_t *type = kw(c, schema, KW_TYPE);
    if (type) {
        bool ok = false;
        size_t i;
        json_t *t;
        if (json_is_string(type))
            ok = type_matches(json_string_value(type), &v);
        else
            json_array_foreach(type, i, t) ok = ok || type_matches(json_string_value(t), &v);
        if (!ok) {
            /* What was wanted, said only when it was not given. */
            char want[96] = "";
            if (json_is_string(type))
                snprintf(want, sizeof(want), "%s", json_string_value(type));
            else
                json_array_foreach(type, i, t)
                {
                    size_t l = strlen(want);
                    snprintf(want + l, sizeof(want) - l, "%s%s", i ? " or " : "",
                             json_string_value(t));
                }
            const char *got = rc_y_type_name(node);
            if (node->type == YAML_SCALAR_NODE)
                verr(c, node, "expected %s, got %s %s", want, got, show(node, sv, sizeof(sv)));
            else
                verr(c, node, "expected %s, got %s", want, got);
            c->depth--;
            return; /* the other keywords would only repeat the same mistake */
        }
    }

    const json_t *cst = kw(c, schema, KW_CONST);
    if (cst && !json_equals_node(cst, node)) {
        char want[128];
        show_json(cst, want, sizeof(want));
        verr(c, node, "%s must be %s", show(node, sv, sizeof(sv)), want);
    }
    const json_t *en = kw(c, schema, KW_ENUM);
    if (json_is_array(en)) {
        bool ok = false;
        size_t i;
        json_t *e;
        char list[512] = "";
        json_array_foreach(en, i, e)
        {
            ok = ok || json_equals_node(e, node);
            char one[128];
            show_json(e, one, sizeof(one));
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", one);
        }
        if (!ok)
            verr(c, node, "%s is not one of %s", show(node, sv, sizeof(sv)), list);
    }

    if (node->type == YAML_MAPPING_NODE)
        validate_object(c, root, schema, node);
    else if (node->type == YAML_SEQUENCE_NODE)
        validate_array(c, root, schema, node);
    else
        validate_scalar(c, schema, node, &v);

    const json_t *all = kw(c, schema, KW_ALLOF);
    size_t i;
    json_t *sub;
    json_array_foreach(all, i, sub) validate(c, root, sub, node);
    const json_t *any = kw(c, schema, KW_ANYOF);
    if (json_is_array(any))
        validate_combinator(c, root, any, node, false);
    const json_t *one = kw(c, schema, KW_ONEOF);
    if (json_is_array(one))
        validate_combinator(c, root, one, node, true);
    c->depth--;
}

size_t rc_schema_validate(const json_t *root, const json_t *schema, const struct rc_doc *doc,
                          yaml_node_t *node, const char *path, const char *kind, const char *name,
                          struct rc_errs *errs)
{
    struct vctx c = {
        .doc = doc, .y = (yaml_document_t *)doc->y, .errs = errs, .kind = kind, .name = name};
    snprintf(c.path, sizeof(c.path), "%s", path ? path : "");
    c.plen = strlen(c.path);
    size_t nodes = (size_t)(c.y->nodes.top - c.y->nodes.start);
    c.visits_left = nodes * 64 + 4096;
    validate(&c, root, schema, node);
    if (c.exhausted) {
        struct rc_loc loc = rc_y_loc(doc, node);
        rc_errs_add(errs, RC_ERROR, &loc, kind, name, NULL,
                    "validation stopped: the document's nodes are shared (YAML aliases?)");
        c.n_err++;
    }
    if (c.truncated)
        rc_errs_add(errs, RC_ERROR, &c.hidden_at, kind, name, NULL,
                    "from here on, more errors in this document are not shown (the first %d are)",
                    MAX_SHOWN);
    free(c.kw);
    return c.n_err;
}

size_t rc_schema_validate_doc(struct rc_doc *doc, struct rc_errs *errs)
{
    yaml_node_t *root = rc_doc_root(doc);
    doc->kind = NULL;
    doc->name = NULL;
    doc->schema_ok = false;
    if (root == NULL)
        return 0;
    if (root->type != YAML_MAPPING_NODE) {
        /* Not a manifest at all (a file that only looks like YAML, such as
         * a text file): say what it is, never what it holds. */
        struct rc_loc loc = rc_y_loc(doc, root);
        rc_errs_add(errs, RC_ERROR, &loc, NULL, NULL, NULL,
                    "not a manifest: the document is %s, not an object with apiVersion, kind, "
                    "metadata and spec",
                    root->type == YAML_SEQUENCE_NODE ? "an array" : "a single value");
        return 1;
    }
    const char *kind = rc_y_str(rc_y_get(doc->y, root, "kind"));
    for (size_t i = 0; kind && rc_kinds[i]; i++)
        if (!strcmp(kind, rc_kinds[i]))
            doc->kind = rc_kinds[i];
    yaml_node_t *name = rc_y_get(doc->y, rc_y_get(doc->y, root, "metadata"), "name");
    if (name && !strcmp(rc_y_type_name(name), "string"))
        doc->name = rc_y_str(name);

    const json_t *schema = rc_schema_get(doc->kind ? doc->kind : "Document");
    if (schema == NULL) {
        struct rc_loc loc = rc_y_loc(doc, root);
        rc_errs_add(errs, RC_ERROR, &loc, doc->kind, doc->name, NULL,
                    "internal error: the schema for %s is missing or does not parse",
                    doc->kind ? doc->kind : "Document");
        return 1;
    }
    size_t n = rc_schema_validate(schema, schema, doc, root, "", doc->kind, doc->name, errs);
    doc->schema_ok = n == 0 && doc->kind != NULL;
    return n;
}
