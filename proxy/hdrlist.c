#include "proxy/hdrlist.h"

void px_hdrlist_reset(struct px_hdrlist *l)
{
    l->n = 0;
    l->bytes = 0;
    l->in_value = false;
}

int px_hdrlist_add(struct px_hdrlist *l, struct px_buf *buf, const char *at, size_t len, bool value,
                   size_t limit)
{
    if (!value && (l->in_value || l->n == 0)) {
        if (l->n >= PX_HDR_MAX)
            return -1;
        l->ents[l->n++] = (struct px_hdr_ent){(uint32_t)buf->len, 0, 0, 0};
        l->in_value = false;
        l->bytes += 4; /* ": " and CRLF */
    }
    if (l->n == 0 || value != l->in_value)
        return -1;
    struct px_hdr_ent *e = &l->ents[l->n - 1];
    l->bytes += len;
    if (l->bytes > limit || px_buf_append(buf, at, len) < 0)
        return -1;
    if (value)
        e->vl += (uint32_t)len;
    else
        e->nl += (uint32_t)len;
    return 0;
}

void px_hdrlist_name_done(struct px_hdrlist *l, const struct px_buf *buf)
{
    if (l->n == 0)
        return;
    struct px_hdr_ent *e = &l->ents[l->n - 1];
    e->vo = (uint32_t)buf->len;
    e->vl = 0;
    l->in_value = true;
}

size_t px_hdrlist_get(const struct px_hdrlist *l, const struct px_buf *buf, struct px_hdr *out)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct px_hdr_ent *e = &l->ents[i];
        out[i] = (struct px_hdr){buf->data + e->no, e->nl, buf->data + e->vo, e->vl};
    }
    return l->n;
}
