/* Reading the fields of a schema-valid document and locating errors at its
 * nodes (field.h). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reconciler/build.h"
#include "reconciler/field.h"

yaml_node_t *rc_at(struct rc_doc *d, yaml_node_t *n, const char *dotted)
{
    char key[128];
    const char *p = dotted;
    while (n && *p) {
        size_t len = strcspn(p, ".");
        if (len >= sizeof(key))
            return NULL;
        memcpy(key, p, len);
        key[len] = '\0';
        n = rc_y_get(d->y, n, key);
        p += len;
        if (*p == '.')
            p++;
    }
    return n;
}

void rc_doc_err(struct rc_load *L, struct rc_doc *d, enum rc_severity sev, const yaml_node_t *n,
                const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n == NULL)
        n = rc_doc_root(d);
    struct rc_loc loc = rc_y_loc(d, n);
    rc_errs_add(L->errs, sev, &loc, d->kind, d->name, path, "%s", msg);
}

bool rc_field_bool(struct rc_doc *d, yaml_node_t *n, const char *path, bool def)
{
    yaml_node_t *v = rc_at(d, n, path);
    struct rc_yval y;
    if (v == NULL)
        return def;
    rc_y_classify(v, &y);
    return y.type == RC_Y_BOOL ? y.b : def;
}

int rc_field_int(struct rc_doc *d, yaml_node_t *n, const char *path, int def)
{
    yaml_node_t *v = rc_at(d, n, path);
    struct rc_yval y;
    if (v == NULL)
        return def;
    rc_y_classify(v, &y);
    return y.type == RC_Y_INT || y.type == RC_Y_FLOAT ? (int)y.d : def;
}

uint64_t rc_field_u64(struct rc_doc *d, yaml_node_t *n, const char *path, uint64_t def)
{
    yaml_node_t *v = rc_at(d, n, path);
    struct rc_yval y;
    if (v == NULL)
        return def;
    rc_y_classify(v, &y);
    return (y.type == RC_Y_INT || y.type == RC_Y_FLOAT) && y.d >= 0 ? (uint64_t)y.d : def;
}

const char *rc_field_str(struct rc_doc *d, yaml_node_t *n, const char *path, const char *def)
{
    const char *s = rc_y_str(rc_at(d, n, path));
    return s ? s : def;
}

bool rc_is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}
