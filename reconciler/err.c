/* Error lists: growable arrays of owned copies, sorted and printed in one
 * deterministic format (see err.h). */
#include "reconciler/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/sort.h"

static void *xalloc(void *p)
{
    if (p == NULL)
        abort(); /* err.h: out of memory while reporting is not recoverable */
    return p;
}

void rc_errs_init(struct rc_errs *e)
{
    e->v = NULL;
    e->n = e->cap = 0;
}

void rc_errs_reserve(struct rc_errs *e, size_t n)
{
    if (n <= e->cap)
        return;
    struct rc_err *v = realloc(e->v, n * sizeof(*e->v));
    if (v == NULL)
        return; /* rc_errs_add grows it when it must */
    e->v = v;
    e->cap = n;
}

void rc_errs_cleanup(struct rc_errs *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].msg); /* the block that holds all its strings (rc_errs_add) */
    free(e->v);
    rc_errs_init(e);
}

/* The next of the strings packed after the message: a copy of src, or
 * NULL (and nothing used) when src is NULL. */
static char *pack(char **at, const char *src, size_t len)
{
    if (src == NULL)
        return NULL;
    char *p = memcpy(*at, src, len);
    p[len] = '\0';
    *at += len + 1;
    return p;
}

void rc_errs_add(struct rc_errs *e, enum rc_severity sev, const struct rc_loc *loc,
                 const char *kind, const char *name, const char *path, const char *fmt, ...)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        e->v = xalloc(realloc(e->v, cap * sizeof(*e->v)));
        e->cap = cap;
    }
    /* One allocation per entry: the message, then the copies of file,
     * kind, name and path. 10,000 certificates near expiry add 10,000
     * warnings to every reload; five allocations (and five frees) each
     * were a tenth of its time. */
    char first[256];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(first, sizeof first, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    const char *file = loc ? loc->file : NULL;
    if (path && !*path)
        path = NULL;
    size_t fl = file ? strlen(file) : 0, kl = kind ? strlen(kind) : 0, nl = name ? strlen(name) : 0,
           pl = path ? strlen(path) : 0;
    char *msg = xalloc(malloc((size_t)n + 1 + fl + 1 + kl + 1 + nl + 1 + pl + 1));
    if ((size_t)n < sizeof first)
        memcpy(msg, first, (size_t)n + 1);
    else
        vsnprintf(msg, (size_t)n + 1, fmt, again);
    va_end(again);
    char *at = msg + n + 1;
    struct rc_err *x = &e->v[e->n++];
    x->severity = sev;
    x->file = pack(&at, file, fl);
    x->line = loc ? loc->line : 0;
    x->col = loc ? loc->col : 0;
    x->kind = pack(&at, kind, kl);
    x->name = pack(&at, name, nl);
    x->path = pack(&at, path, pl);
    x->msg = msg;
}

const char *rc_severity_name(enum rc_severity sev)
{
    switch (sev) {
    case RC_WARNING:
        return "warning";
    case RC_NOTE:
        return "note";
    case RC_ERROR:
        break;
    }
    return "error";
}

size_t rc_errs_count_errors(const struct rc_errs *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n; i++)
        n += e->v[i].severity == RC_ERROR;
    return n;
}

static int strcmp_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

static int err_cmp(const void *pa, const void *pb)
{
    const struct rc_err *a = pa, *b = pb;
    int c = strcmp_null(a->file, b->file);
    if (c)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    if ((c = strcmp_null(a->path, b->path)))
        return c;
    if ((c = strcmp_null(a->msg, b->msg)))
        return c;
    return (int)a->severity - (int)b->severity;
}

void rc_errs_sort(struct rc_errs *e)
{
    /* Mostly in order already (a reload reports its certificates' expiry
     * in name order, then the few it parsed): merging the runs costs about
     * one comparison per entry. */
    if (e->n > 1 && rc_sort_runs(e->v, e->n, sizeof(*e->v), err_cmp) != 0)
        qsort(e->v, e->n, sizeof(*e->v), err_cmp);
}

/* Appends s to buf[*off..size) with every control character escaped:
 * manifest text (a key, a value, a file name) must not start a new log
 * line or move the terminal's cursor. C0 and DEL become \n, \r, \t or \xNN;
 * the C1 controls (U+0080..U+009F, which some terminals obey) \u00NN. */
static void put_escaped(char *buf, size_t size, size_t *off, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p && *off + 1 < size; p++) {
        char esc[8];
        const char *out = esc;
        size_t n;
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", p[1]);
            p++;
        } else {
            out = (const char *)p;
            n = 1;
        }
        if (*off + n >= size)
            break; /* truncated: never half an escape */
        memcpy(buf + *off, out, n);
        *off += n;
    }
    buf[*off < size ? *off : size - 1] = '\0';
}

void rc_err_format(const struct rc_err *x, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    size_t off = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (off < size) {                                                                          \
            int w_ = snprintf(buf + off, size - off, __VA_ARGS__);                                 \
            if (w_ > 0)                                                                            \
                off += (size_t)w_;                                                                 \
        }                                                                                          \
    } while (0)
#define PUT_ESC(s)                                                                                 \
    do {                                                                                           \
        if (off < size)                                                                            \
            put_escaped(buf, size, &off, (s));                                                     \
    } while (0)
    if (x->file) {
        PUT_ESC(x->file);
        if (x->line > 0)
            PUT(":%d:%d", x->line, x->col);
        PUT(": ");
    }
    PUT("%s: ", rc_severity_name(x->severity));
    if (x->path) {
        PUT_ESC(x->path);
        PUT(": ");
    }
    PUT_ESC(x->msg ? x->msg : "");
    if (x->kind) {
        PUT(" (");
        PUT_ESC(x->kind);
        PUT("/");
        PUT_ESC(x->name ? x->name : "?");
        PUT(")");
    }
#undef PUT_ESC
#undef PUT
}

void rc_errs_print(const struct rc_errs *e, FILE *out)
{
    char buf[2048];
    for (size_t i = 0; i < e->n; i++) {
        rc_err_format(&e->v[i], buf, sizeof(buf));
        fprintf(out, "%s\n", buf);
    }
}
