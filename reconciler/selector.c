/* Label selectors (see selector.h): a small recursive-descent parser over
 * the kubectl grammar, and a matcher over any label set. */
#include "reconciler/selector.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_ABSENT };

struct req {
    enum op op;
    char *key;
    char **values; /* OP_EQ/OP_NE: one; OP_IN/OP_NOTIN: one or more */
    size_t n_values;
};

struct rc_selector {
    struct req *v;
    size_t n;
};

/* ---- parsing ------------------------------------------------------------ */

struct parser {
    const char *s; /* the whole text */
    size_t i;      /* current offset */
    char *err;
    size_t errlen;
    bool failed, oom;
};

__attribute__((format(printf, 2, 3))) static void fail(struct parser *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    int n = snprintf(p->err, p->errlen, "column %zu: ", p->i + 1);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_word(char c)
{
    return c != '\0' && !is_space(c) && strchr(",=!()", c) == NULL;
}

static void skip_space(struct parser *p)
{
    while (is_space(p->s[p->i]))
        p->i++;
}

/* The word at the current position (after spaces), malloc'd; "" when there
 * is none; NULL when out of memory. */
static char *word(struct parser *p)
{
    skip_space(p);
    size_t start = p->i;
    while (is_word(p->s[p->i]))
        p->i++;
    char *w = strndup(p->s + start, p->i - start);
    if (w == NULL)
        p->oom = p->failed = true;
    return w;
}

/* Where a word starts and how long it is, without consuming it. */
static size_t peek_word(struct parser *p, const char **w)
{
    skip_space(p);
    size_t n = 0;
    while (is_word(p->s[p->i + n]))
        n++;
    *w = p->s + p->i;
    return n;
}

static bool add_value(struct parser *p, struct req *r, char *v)
{
    if (v == NULL)
        return false;
    char **nv = realloc(r->values, (r->n_values + 1) * sizeof *nv);
    if (nv == NULL) {
        free(v);
        p->oom = p->failed = true;
        return false;
    }
    r->values = nv;
    r->values[r->n_values++] = v;
    return true;
}

/* How an error message names the character c; buf holds at least 8 bytes. */
static const char *show(char c, char *buf)
{
    if (c == '\0')
        return "end of selector";
    unsigned char u = (unsigned char)c;
    if (u < 0x20 || u >= 0x7f)
        snprintf(buf, 8, "0x%02x", u);
    else
        snprintf(buf, 8, "\"%c\"", c);
    return buf;
}

/* values := "(" value ("," value)* ")" */
static void value_list(struct parser *p, struct req *r, const char *opname)
{
    skip_space(p);
    if (p->s[p->i] != '(') {
        fail(p, "expected a value list \"(a,b)\" after \"%s\", found %s", opname,
             show(p->s[p->i], (char[8]){0}));
        return;
    }
    p->i++;
    for (;;) {
        const char *w;
        if (peek_word(p, &w) == 0) {
            fail(p, "expected a value in the list after \"%s\", found %s", opname,
                 show(p->s[p->i], (char[8]){0}));
            return;
        }
        if (!add_value(p, r, word(p)))
            return;
        skip_space(p);
        char c = p->s[p->i];
        if (c == ',') {
            p->i++;
            continue;
        }
        if (c == ')') {
            p->i++;
            return;
        }
        fail(p, "expected \",\" or \")\" in the value list, found %s", show(c, (char[8]){0}));
        return;
    }
}

static void requirement(struct parser *p, struct req *r)
{
    skip_space(p);
    if (p->s[p->i] == '!') {
        p->i++;
        r->op = OP_ABSENT;
        const char *w;
        if (peek_word(p, &w) == 0) {
            fail(p, "expected a label key after \"!\", found %s", show(p->s[p->i], (char[8]){0}));
            return;
        }
        r->key = word(p);
        return;
    }
    const char *w;
    if (peek_word(p, &w) == 0) {
        fail(p, "expected a label key, found %s", show(p->s[p->i], (char[8]){0}));
        return;
    }
    if ((r->key = word(p)) == NULL)
        return;
    skip_space(p);
    char c = p->s[p->i];
    if (c == '\0' || c == ',') {
        r->op = OP_EXISTS;
        return;
    }
    if (c == '=' || c == '!') {
        if (c == '!' && p->s[p->i + 1] != '=') {
            fail(p, "expected \"!=\" after the key \"%s\"", r->key);
            return;
        }
        r->op = c == '!' ? OP_NE : OP_EQ;
        p->i += (c == '!' || p->s[p->i + 1] == '=') ? 2 : 1;
        char *v = word(p); /* may be empty */
        if (!add_value(p, r, v))
            return;
        skip_space(p);
        if (p->s[p->i] != '\0' && p->s[p->i] != ',')
            fail(p, "expected \",\" or the end after the value of \"%s\", found %s", r->key,
                 show(p->s[p->i], (char[8]){0}));
        return;
    }
    size_t n = peek_word(p, &w);
    if (n == 2 && strncmp(w, "in", 2) == 0) {
        p->i += 2;
        r->op = OP_IN;
        value_list(p, r, "in");
    } else if (n == 5 && strncmp(w, "notin", 5) == 0) {
        p->i += 5;
        r->op = OP_NOTIN;
        value_list(p, r, "notin");
    } else {
        fail(p,
             "expected \"=\", \"==\", \"!=\", \"in\", \"notin\", \",\" or the end after the key "
             "\"%s\", found %s",
             r->key, n > 0 ? "another word" : show(p->s[p->i], (char[8]){0}));
        return;
    }
    skip_space(p);
    if (!p->failed && p->s[p->i] != '\0' && p->s[p->i] != ',')
        fail(p, "expected \",\" or the end after the value list of \"%s\", found %s", r->key,
             show(p->s[p->i], (char[8]){0}));
}

void rc_selector_free(struct rc_selector *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        for (size_t j = 0; j < s->v[i].n_values; j++)
            free(s->v[i].values[j]);
        free(s->v[i].values);
    }
    free(s->v);
    free(s);
}

int rc_selector_parse(const char *text, struct rc_selector **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (text == NULL)
        text = "";
    if (strlen(text) > RC_SELECTOR_MAX) {
        snprintf(err, errlen, "longer than %d bytes", RC_SELECTOR_MAX);
        return -1;
    }
    struct rc_selector *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct parser p = {.s = text, .err = err, .errlen = errlen};
    skip_space(&p);
    while (text[p.i] != '\0' && !p.failed) {
        struct req *v = realloc(s->v, (s->n + 1) * sizeof *v);
        if (v == NULL) {
            p.oom = p.failed = true;
            break;
        }
        s->v = v;
        memset(&s->v[s->n], 0, sizeof s->v[s->n]);
        requirement(&p, &s->v[s->n++]);
        if (p.failed)
            break;
        skip_space(&p);
        if (text[p.i] == ',') {
            p.i++;
            skip_space(&p);
            if (text[p.i] == '\0')
                fail(&p, "expected a requirement after \",\"");
        } else if (text[p.i] != '\0') {
            fail(&p, "expected \",\" or the end of the selector, found %s",
                 show(text[p.i], (char[8]){0}));
        }
    }
    if (p.failed) {
        if (p.oom)
            snprintf(err, errlen, "out of memory");
        rc_selector_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

size_t rc_selector_size(const struct rc_selector *s)
{
    return s != NULL ? s->n : 0;
}

/* ---- matching ----------------------------------------------------------- */

static bool in_values(const struct req *r, const char *v)
{
    for (size_t i = 0; i < r->n_values; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

bool rc_selector_matches(const struct rc_selector *s, rc_label_get_fn get, const void *ctx)
{
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        const struct req *r = &s->v[i];
        const char *v = get(ctx, r->key);
        bool ok;
        switch (r->op) {
        case OP_EQ:
        case OP_IN:
            ok = v != NULL && in_values(r, v);
            break;
        case OP_NE:
        case OP_NOTIN:
            ok = v == NULL || !in_values(r, v);
            break;
        case OP_EXISTS:
            ok = v != NULL;
            break;
        default:
            ok = v == NULL;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

static const char *json_get(const void *ctx, const char *key)
{
    const json_t *labels = ctx;
    if (!json_is_object(labels))
        return NULL;
    return json_string_value(json_object_get(labels, key)); /* NULL unless a string */
}

bool rc_selector_matches_json(const struct rc_selector *s, const json_t *labels)
{
    return rc_selector_matches(s, json_get, labels);
}

static const char *meta_get(const void *ctx, const char *key)
{
    const struct rc_meta *m = ctx;
    for (size_t i = 0; i < m->n_labels; i++)
        if (m->labels[i].key != NULL && strcmp(m->labels[i].key, key) == 0)
            return m->labels[i].value != NULL ? m->labels[i].value : "";
    return NULL;
}

bool rc_selector_matches_meta(const struct rc_selector *s, const struct rc_meta *meta)
{
    return rc_selector_matches(s, meta_get, meta);
}

static json_t *resource_of(const json_t *ex, const char *kind, const char *name)
{
    json_t *kinds = json_object_get(ex, "resources");
    return json_object_get(json_object_get(kinds, kind), name);
}

bool rc_selector_selects(const struct rc_selector *s, const json_t *ex, const char *kind,
                         const char *name)
{
    if (ex == NULL || kind == NULL || name == NULL)
        return false;
    json_t *res = resource_of(ex, kind, name);
    return res != NULL && rc_selector_matches_json(s, json_object_get(res, "labels"));
}

/* Removes from ex's kind object the names that match in neither export. */
static int filter_kind(const struct rc_selector *s, json_t *objs, const char *kind,
                       const json_t *other)
{
    const char *name;
    json_t *res;
    void *tmp;
    json_object_foreach_safe(objs, tmp, name, res)
    {
        if (rc_selector_matches_json(s, json_object_get(res, "labels")) ||
            rc_selector_selects(s, other, kind, name))
            continue;
        if (json_object_del(objs, name) != 0)
            return -1;
    }
    return 0;
}

int rc_selector_filter_exports(const struct rc_selector *s, json_t *a, json_t *b)
{
    if (rc_selector_size(s) == 0)
        return 0;
    /* a against b as it is; then b against the filtered a, which still holds
     * everything that matches in a or in b. */
    json_t *sides[2] = {a, b}, *others[2] = {b, a};
    for (int k = 0; k < 2; k++) {
        json_t *kinds = json_object_get(sides[k], "resources");
        const char *kind;
        json_t *objs;
        json_object_foreach(kinds, kind, objs)
        {
            if (json_is_object(objs) && filter_kind(s, objs, kind, others[k]) != 0)
                return -1;
        }
    }
    return 0;
}
