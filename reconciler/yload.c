/* rc_y_load: libyaml's document loader rebuilt on its event parser, with
 * the limits a manifest needs (doc.h). yaml_parser_load expands aliases by
 * sharing nodes, so a self-referencing alias or a "billion laughs" becomes
 * a graph whose walks never end; and it lets nesting grow without bound,
 * where libyaml's scanner spends time proportional to the nesting for every
 * token. Here anchors and aliases are refused where they appear, nesting
 * stops at RC_Y_MAX_DEPTH and the node count at a budget, each as soon as
 * the event that passes it arrives: libyaml reads at most one simple-key
 * window (1,024 bytes) ahead of the events, so it never sees deep nesting
 * for long. */
#include <stdlib.h>
#include <string.h>

#include "reconciler/doc.h"

#define RC_Y_STR_(x) #x
#define RC_Y_STR(x) RC_Y_STR_(x)

struct open_node {
    int id;  /* the collection's node */
    int key; /* a mapping's key waiting for its value, or 0 */
};

static void fail(struct rc_y_diag *e, const yaml_mark_t *m, const char *problem)
{
    e->problem = problem;
    e->context = NULL;
    e->mark = *m;
    e->nomem = false;
    e->refused = true;
}

/* Attaches node id to the innermost open collection (or leaves it as the
 * root). Returns 0, or -1 when out of memory. */
static int attach(yaml_document_t *y, struct open_node *stack, size_t depth, int id)
{
    if (depth == 0)
        return 0;
    struct open_node *top = &stack[depth - 1];
    yaml_node_t *parent = yaml_document_get_node(y, top->id);
    if (parent->type == YAML_SEQUENCE_NODE)
        return yaml_document_append_sequence_item(y, top->id, id) ? 0 : -1;
    if (top->key == 0) {
        top->key = id;
        return 0;
    }
    int key = top->key;
    top->key = 0;
    return yaml_document_append_mapping_pair(y, top->id, key, id) ? 0 : -1;
}

/* The node tag as yaml_parser_load keeps it: NULL (the default for the
 * node's kind) when absent or non-specific. */
static const yaml_char_t *tag_of(const yaml_char_t *tag)
{
    return tag == NULL || !strcmp((const char *)tag, "!") ? NULL : tag;
}

int rc_y_load(yaml_parser_t *p, yaml_document_t *y, size_t *budget, struct rc_y_diag *e)
{
    memset(e, 0, sizeof(*e));
    if (!yaml_document_initialize(y, NULL, NULL, NULL, 1, 1)) {
        e->nomem = true;
        return -1;
    }
    struct open_node stack[RC_Y_MAX_DEPTH];
    size_t depth = 0;
    bool in_doc = false, done = false;
    int rc = 1;
    while (!done && rc == 1) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) {
            e->problem = p->problem;
            e->context = p->context;
            e->mark = p->problem_mark;
            e->nomem = p->error == YAML_MEMORY_ERROR;
            rc = e->nomem ? -1 : 0;
            break;
        }
        const yaml_char_t *anchor = NULL;
        int id = 0;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            done = true; /* an empty document: the end of the stream */
            break;
        case YAML_DOCUMENT_START_EVENT:
            in_doc = true;
            y->start_mark = ev.start_mark;
            y->start_implicit = ev.data.document_start.implicit;
            break;
        case YAML_DOCUMENT_END_EVENT:
            y->end_mark = ev.end_mark;
            y->end_implicit = ev.data.document_end.implicit;
            done = in_doc;
            break;
        case YAML_ALIAS_EVENT:
            fail(e, &ev.start_mark, "aliases (*name) are not supported in manifests");
            rc = 0;
            break;
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            if (anchor == NULL)
                id = yaml_document_add_scalar(y, (yaml_char_t *)tag_of(ev.data.scalar.tag),
                                              ev.data.scalar.value, (int)ev.data.scalar.length,
                                              ev.data.scalar.style);
            break;
        case YAML_SEQUENCE_START_EVENT:
            anchor = ev.data.sequence_start.anchor;
            if (anchor == NULL && depth < RC_Y_MAX_DEPTH)
                id =
                    yaml_document_add_sequence(y, (yaml_char_t *)tag_of(ev.data.sequence_start.tag),
                                               ev.data.sequence_start.style);
            break;
        case YAML_MAPPING_START_EVENT:
            anchor = ev.data.mapping_start.anchor;
            if (anchor == NULL && depth < RC_Y_MAX_DEPTH)
                id = yaml_document_add_mapping(y, (yaml_char_t *)tag_of(ev.data.mapping_start.tag),
                                               ev.data.mapping_start.style);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                int closed = stack[--depth].id;
                yaml_document_get_node(y, closed)->end_mark = ev.end_mark;
                if (attach(y, stack, depth, closed) != 0)
                    rc = -1;
            }
            break;
        default: /* YAML_NO_EVENT: the stream ended before */
            done = true;
            break;
        }
        bool node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
                    ev.type == YAML_MAPPING_START_EVENT;
        if (node && rc == 1) {
            if (anchor != NULL) {
                fail(e, &ev.start_mark, "anchors (&name) are not supported in manifests");
                rc = 0;
            } else if (ev.type != YAML_SCALAR_EVENT && depth == RC_Y_MAX_DEPTH) {
                fail(e, &ev.start_mark, "nested deeper than " RC_Y_STR(RC_Y_MAX_DEPTH) " levels");
                rc = 0;
            } else if (*budget == 0) {
                fail(e, &ev.start_mark,
                     "more than " RC_Y_STR(RC_Y_MAX_NODES) " YAML nodes in one file");
                rc = 0;
            } else if (id == 0) {
                e->nomem = true;
                rc = -1;
            } else {
                --*budget;
                yaml_node_t *n = yaml_document_get_node(y, id);
                n->start_mark = ev.start_mark;
                n->end_mark = ev.end_mark;
                if (ev.type == YAML_SCALAR_EVENT) {
                    if (attach(y, stack, depth, id) != 0)
                        rc = -1;
                } else {
                    stack[depth++] = (struct open_node){id, 0};
                }
            }
            if (rc == -1)
                e->nomem = true;
        }
        yaml_event_delete(&ev);
    }
    if (rc != 1)
        yaml_document_delete(y);
    return rc;
}
