/* YAML node helpers: YAML 1.2 core-schema typing of plain scalars, lookups,
 * locations and a canonical serialisation (for digests and uniqueItems). */
#include "reconciler/doc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_null(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static bool all_of(const char *s, const char *set)
{
    return *s && strspn(s, set) == strlen(s);
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool is_float(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t digits = strspn(p, "0123456789");
    p += digits;
    if (*p == '.') {
        p++;
        size_t frac = strspn(p, "0123456789");
        if (digits == 0 && frac == 0)
            return false;
        p += frac;
    } else if (digits == 0) {
        return false;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        size_t e = strspn(p, "0123456789");
        if (e == 0)
            return false;
        p += e;
    }
    return *p == '\0';
}

static bool special_float(const char *s, double *d)
{
    const char *p = s;
    double sign = 1;
    if (*p == '-' || *p == '+')
        sign = *p++ == '-' ? -1 : 1;
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
        *d = sign * INFINITY;
        return true;
    }
    if (p == s && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
        *d = NAN;
        return true;
    }
    return false;
}

static bool parse_int(const char *s, long long *out)
{
    const char *p = s;
    int base = 10;
    if (p[0] == '0' && p[1] == 'o') {
        if (!all_of(p + 2, "01234567"))
            return false;
        p += 2;
        base = 8;
    } else if (p[0] == '0' && p[1] == 'x') {
        if (!all_of(p + 2, "0123456789abcdefABCDEF"))
            return false;
        p += 2;
        base = 16;
    } else {
        const char *q = p;
        if (*q == '-' || *q == '+')
            q++;
        if (!all_of(q, "0123456789"))
            return false;
    }
    errno = 0;
    *out = strtoll(p, NULL, base); /* saturates at LLONG_MIN/MAX */
    return true;
}

void rc_y_classify(const yaml_node_t *n, struct rc_yval *out)
{
    memset(out, 0, sizeof(*out));
    if (n->type == YAML_MAPPING_NODE) {
        out->type = RC_Y_MAP;
        return;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        out->type = RC_Y_SEQ;
        return;
    }
    const char *s = (const char *)n->data.scalar.value;
    out->type = RC_Y_STR;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return;
    /* Null, booleans and numbers all start with one of these (the empty
     * string's NUL included): any other plain scalar is a string, decided
     * without the comparisons below (a list of 10,000 names). */
    if (strchr("~nNtTfF-+.0123456789", s[0]) == NULL)
        return;
    if (is_null(s)) {
        out->type = RC_Y_NULL;
    } else if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        out->type = RC_Y_BOOL;
        out->b = true;
    } else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        out->type = RC_Y_BOOL;
    } else if (parse_int(s, &out->i)) {
        out->type = RC_Y_INT;
        out->d = (double)out->i;
    } else if (is_float(s)) {
        out->type = RC_Y_FLOAT;
        out->d = strtod(s, NULL);
    } else if (special_float(s, &out->d)) {
        out->type = RC_Y_FLOAT;
    }
}

const char *rc_y_type_name(const yaml_node_t *n)
{
    static const char *const names[] = {"null",   "boolean", "integer", "number",
                                        "string", "object",  "array"};
    struct rc_yval v;
    rc_y_classify(n, &v);
    return names[v.type];
}

const char *rc_y_str(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_pair_t *find_pair(yaml_document_t *d, const yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = rc_y_str(yaml_document_get_node(d, p->key));
        if (k && !strcmp(k, key))
            return p;
    }
    return NULL;
}

yaml_node_t *rc_y_get(yaml_document_t *d, const yaml_node_t *map, const char *key)
{
    yaml_node_pair_t *p = find_pair(d, map, key);
    return p ? yaml_document_get_node(d, p->value) : NULL;
}

yaml_node_t *rc_y_get_key(yaml_document_t *d, const yaml_node_t *map, const char *key)
{
    yaml_node_pair_t *p = find_pair(d, map, key);
    return p ? yaml_document_get_node(d, p->key) : NULL;
}

struct rc_loc rc_y_loc(const struct rc_doc *doc, const yaml_node_t *n)
{
    struct rc_loc loc = {doc->file, 0, 0};
    if (n) {
        loc.line = (int)n->start_mark.line + 1 + doc->line_base;
        loc.col = (int)n->start_mark.column + 1;
    }
    return loc;
}

struct buf {
    char *p;
    size_t n, cap;
    bool oom;
    /* Nodes the walk may still visit: a tree visits each node once, so
     * more than the document holds means nodes are shared (aliases, which
     * the loader refuses: a second line of defence). */
    size_t budget;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_quoted(struct buf *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            char esc[2] = {'\\', *s};
            put(b, esc, 2);
        } else if ((unsigned char)*s < 0x20) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)*s);
            puts_(b, esc);
        } else {
            put(b, s, 1);
        }
    }
    put(b, "\"", 1);
}

struct kv {
    const char *key;
    yaml_node_t *value;
};

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static void canon(struct buf *b, yaml_document_t *d, const yaml_node_t *n, int depth)
{
    if (b->oom)
        return;
    if (b->budget == 0 || depth > RC_Y_MAX_DEPTH) {
        b->oom = true; /* the loader never gives such a document */
        return;
    }
    b->budget--;
    if (n == NULL) {
        puts_(b, "null");
        return;
    }
    struct rc_yval v;
    rc_y_classify(n, &v);
    char num[64];
    switch (v.type) {
    case RC_Y_NULL:
        puts_(b, "null");
        break;
    case RC_Y_BOOL:
        puts_(b, v.b ? "true" : "false");
        break;
    case RC_Y_INT:
        snprintf(num, sizeof(num), "%lld", v.i);
        puts_(b, num);
        break;
    case RC_Y_FLOAT:
        snprintf(num, sizeof(num), "%.17g", v.d);
        puts_(b, num);
        break;
    case RC_Y_STR:
        put_quoted(b, rc_y_str(n));
        break;
    case RC_Y_SEQ:
        put(b, "[", 1);
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            if (it != n->data.sequence.items.start)
                put(b, ",", 1);
            canon(b, d, yaml_document_get_node(d, *it), depth + 1);
        }
        put(b, "]", 1);
        break;
    case RC_Y_MAP: {
        size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        struct kv *kvs = calloc(cnt ? cnt : 1, sizeof(*kvs));
        if (kvs == NULL) {
            b->oom = true;
            return;
        }
        size_t k = 0;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            const char *key = rc_y_str(yaml_document_get_node(d, p->key));
            if (key == NULL)
                continue;
            kvs[k].key = key;
            kvs[k].value = yaml_document_get_node(d, p->value);
            k++;
        }
        qsort(kvs, k, sizeof(*kvs), kv_cmp);
        put(b, "{", 1);
        for (size_t i = 0; i < k; i++) {
            if (i)
                put(b, ",", 1);
            put_quoted(b, kvs[i].key);
            put(b, ":", 1);
            canon(b, d, kvs[i].value, depth + 1);
        }
        put(b, "}", 1);
        free(kvs);
        break;
    }
    }
}

char *rc_y_canonical(yaml_document_t *d, const yaml_node_t *n, size_t *len)
{
    struct buf b = {.budget = (size_t)(d->nodes.top - d->nodes.start)};
    put(&b, "", 0);
    canon(&b, d, n, 0);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.n;
    return b.p;
}
