/* Parsing one document from its own text (a kept source, or a document of
 * an unchanged manifest file taken from the running model) with the
 * locations it has in its file. */
#include <stdlib.h>
#include <string.h>

#include "reconciler/doc.h"

int rc_doc_take_tree(struct rc_doc *d, yaml_document_t *y)
{
    yaml_document_t *t = malloc(sizeof(*t));
    if (t == NULL) {
        yaml_document_delete(y);
        return -1;
    }
    *t = *y;
    d->y = t;
    return 0;
}

int rc_doc_load_tree(struct rc_doc *d, yaml_parser_t *p, size_t *budget, struct rc_y_diag *e)
{
    yaml_document_t y;
    int r = rc_y_load(p, &y, budget, e);
    if (r == 1 && rc_doc_take_tree(d, &y) != 0)
        return -1;
    return r;
}

void rc_doc_free_tree(struct rc_doc *d)
{
    if (d->y) {
        yaml_document_delete(d->y);
        free(d->y);
        d->y = NULL;
    }
}

int rc_doc_parse(struct rc_doc *d)
{
    /* Indent the first line as it is in the file, so that columns match;
     * later lines are offset by line_base. */
    size_t pad = d->src_col > 1 ? (size_t)d->src_col - 1 : 0;
    char *text = malloc(pad + d->src_len + 1);
    if (text == NULL)
        return -1;
    memset(text, ' ', pad);
    memcpy(text + pad, d->src_text, d->src_len);
    text[pad + d->src_len] = '\0';
    struct rc_y_diag e;
    if (rc_y_prescan(text, pad + d->src_len, &e) != 0) {
        free(text);
        return 1; /* the whole file is parsed instead, and says where */
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        free(text);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, pad + d->src_len);
    size_t budget = RC_Y_MAX_NODES;
    int r = rc_doc_load_tree(d, &parser, &budget, &e);
    bool ok = r == 1 && rc_doc_root(d) != NULL;
    if (r == 1 && !ok)
        rc_doc_free_tree(d);
    yaml_parser_delete(&parser);
    free(text); /* the nodes hold copies of their values */
    if (!ok)
        return r < 0 ? -1 : 1;
    d->line_base = d->src_line - 1;
    d->lazy = false;
    return 0;
}
