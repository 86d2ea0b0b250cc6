/* Resource envelopes and digests (meta.h). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/field.h"
#include "reconciler/meta.h"

void rc_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char sum[32];
    unsigned int n = 0;
    EVP_Digest(data, len, sum, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", sum[i]);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rc_label *)a)->key, ((const struct rc_label *)b)->key);
}

/* Copies the string map at path below root (metadata.labels or
 * metadata.annotations, string to string by the schema) into *out, sorted
 * by key. 0, or -1 when out of memory. */
static int fill_map(struct rc_load *L, struct rc_doc *d, yaml_node_t *root, const char *path,
                    struct rc_label **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    yaml_node_t *map = rc_at(d, root, path);
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return 0;
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n == 0)
        return 0;
    struct rc_label *v = rc_arena_alloc(L->arena, n * sizeof(*v));
    if (v == NULL)
        return -1;
    size_t k = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *key = rc_y_str(yaml_document_get_node(d->y, p->key));
        const char *value = rc_y_str(yaml_document_get_node(d->y, p->value));
        struct rc_label *l = &v[k++];
        l->key = rc_arena_strdup(L->arena, key ? key : "");
        l->value = rc_arena_strdup(L->arena, value ? value : "");
        if (l->key == NULL || l->value == NULL)
            return -1;
    }
    qsort(v, k, sizeof(*v), label_cmp);
    *out = v;
    *n_out = k;
    return 0;
}

int rc_fill_meta(struct rc_load *L, struct rc_doc *d, struct rc_meta *meta, const void *extra,
                 size_t extra_len, const void *extra2, size_t extra2_len)
{
    yaml_node_t *root = rc_doc_root(d);
    meta->kind = d->kind;
    meta->name = rc_arena_strdup(L->arena, d->name);
    meta->loc = rc_y_loc(d, root);
    if (fill_map(L, d, root, "metadata.labels", &meta->labels, &meta->n_labels) != 0 ||
        fill_map(L, d, root, "metadata.annotations", &meta->annotations, &meta->n_annotations) != 0)
        return -1;
    const char *ns = rc_y_str(rc_at(d, root, "metadata.namespace"));
    meta->ns = NULL;
    if (ns != NULL && (meta->ns = rc_arena_strdup(L->arena, ns)) == NULL)
        return -1;
    size_t len = 0;
    char *canon = rc_y_canonical(d->y, rc_y_get(d->y, root, "spec"), &len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (canon == NULL || md == NULL) {
        free(canon);
        EVP_MD_CTX_free(md);
        return -1;
    }
    unsigned char sum[32];
    unsigned int n = 0;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, canon, len + 1);
    if (extra)
        EVP_DigestUpdate(md, extra, extra_len);
    EVP_DigestUpdate(md, "", 1);
    if (extra2)
        EVP_DigestUpdate(md, extra2, extra2_len);
    EVP_DigestFinal_ex(md, sum, &n);
    EVP_MD_CTX_free(md);
    OPENSSL_cleanse(canon, len);
    free(canon);
    for (unsigned i = 0; i < 32; i++)
        snprintf(meta->digest + 2 * i, 3, "%02x", sum[i]);
    return 0;
}
