/* Error lists: growable arrays of owned copies, sorted and printed in one
 * deterministic format (see err.h). */
#include "reconciler/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reconciler/sort.h"

static void *xalloc(void *p)
{
    if (p == NULL)
        abort(); /* err.h: out of memory while reporting is not recoverable */
    return p;
}

/* ---- where the strings live ----
 *
 * Each entry's strings are one piece carved from blocks of its list, freed
 * only with the list. The first block comes from malloc (most lists hold a
 * few entries: a schema alternative tried and dropped, a validate run);
 * the next ones are mapped, 64 KiB doubling up to 1 MiB, and unmapped
 * whole. Why mapped: the agent replaces its list of 10,000 expiry
 * warnings on every reload, and malloc does not reuse the chunks of the
 * list just freed for the new one but picks from the holes a start of
 * 10,000 certificates leaves in its arena, whose pages malloc_trim gave
 * back: the new list cost ~1.5 MiB of fresh pages at the reload's peak.
 * Unmapped blocks leave the resident set at once and the new list's pages
 * replace them. Under AddressSanitizer every block comes from malloc, so
 * that a list never cleaned up shows as a leak. */
struct rc_errs_block {
    struct rc_errs_block *next;
    size_t size; /* the whole block, this header included */
    size_t used; /* bytes handed out, this header included */
    bool mapped;
};

#if defined(__SANITIZE_ADDRESS__)
#define ERRS_MAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ERRS_MAP 0
#endif
#endif
#ifndef ERRS_MAP
#define ERRS_MAP 1
#endif

enum { ERRS_FIRST = 1024, ERRS_MAP_MIN = 64 << 10, ERRS_MAP_MAX = 1 << 20 };

static struct rc_errs_block *block_new(size_t size, bool map)
{
    struct rc_errs_block *b = NULL;
    if (map && ERRS_MAP) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size = (size + page - 1) / page * page;
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        b = xalloc(p == MAP_FAILED ? NULL : p);
    } else {
        b = xalloc(malloc(size));
        map = false;
    }
    b->size = size;
    b->used = sizeof(*b);
    b->mapped = map;
    return b;
}

/* n bytes for one entry's strings, from the list's newest block or a new
 * one. */
static char *strings_alloc(struct rc_errs *e, size_t n)
{
    struct rc_errs_block *b = e->blocks;
    if (b == NULL || b->size - b->used < n) {
        size_t size = b == NULL ? ERRS_FIRST : b->mapped ? 2 * b->size : ERRS_MAP_MIN;
        if (size > ERRS_MAP_MAX)
            size = ERRS_MAP_MAX;
        if (size - sizeof(*b) < n)
            size = sizeof(*b) + n;
        struct rc_errs_block *nb = block_new(size, b != NULL);
        nb->next = b;
        e->blocks = b = nb;
    }
    char *p = (char *)b + b->used;
    b->used += n;
    return p;
}

void rc_errs_init(struct rc_errs *e)
{
    e->v = NULL;
    e->n = e->cap = 0;
    e->blocks = NULL;
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
    for (struct rc_errs_block *b = e->blocks, *next; b != NULL; b = next) {
        next = b->next;
        if (b->mapped)
            munmap(b, b->size);
        else
            free(b);
    }
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
    /* One piece per entry: the message, then the copies of file, kind,
     * name and path. 10,000 certificates near expiry add 10,000 warnings
     * to every reload; five allocations (and five frees) each were a
     * tenth of its time. */
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
    char *msg = strings_alloc(e, (size_t)n + 1 + fl + 1 + kl + 1 + nl + 1 + pl + 1);
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
