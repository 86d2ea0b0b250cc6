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

/* ---- the nesting pre-scan ----
 *
 * libyaml's scanner keeps a possible simple key per open flow collection
 * and looks at all of them for every token: "[[[[..." costs it time in
 * proportion to the square of the nesting. So the bytes are scanned for
 * flow nesting before libyaml sees them. The scan skips comments, quoted
 * scalars and the content of block scalars, and counts '[' and '{' only
 * where a flow collection can begin (inside one, or where a block value
 * starts); it may miss an opener (rc_y_load still counts every level
 * exactly), but never counts one where YAML has none, except on the
 * continuation line of a plain scalar that begins with '[' or '{' — and
 * 65 unclosed ones of those are needed for a false refusal. */

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Skips a quoted scalar whose opening quote is at text[*i]; lines and
 * columns follow. */
static void skip_quoted(const char *t, size_t len, size_t *i, size_t *line, size_t *ls)
{
    char q = t[*i];
    for (size_t j = *i + 1; j < len; j++) {
        if (t[j] == '\n') {
            ++*line;
            *ls = j + 1;
        } else if (q == '"' && t[j] == '\\') {
            if (j + 1 < len && t[j + 1] == '\n') {
                ++*line;
                *ls = j + 2;
            }
            j++;
        } else if (t[j] == q) {
            if (q == '\'' && j + 1 < len && t[j + 1] == '\'') {
                j++;
                continue;
            }
            *i = j;
            return;
        }
    }
    *i = len;
}

int rc_y_prescan(const char *t, size_t len, struct rc_y_diag *e)
{
    memset(e, 0, sizeof(*e));
    size_t depth = 0, line = 0, ls = 0; /* ls: index where the line starts */
    char prev = '\n';                   /* last non-blank byte on this line ('\n': none) */
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == '\n') {
            line++;
            ls = i + 1;
            prev = '\n';
            /* A document marker ends any flow collection. */
            if (len - ls >= 3 && (!memcmp(t + ls, "---", 3) || !memcmp(t + ls, "...", 3)) &&
                (len - ls == 3 || blank(t[ls + 3]) || t[ls + 3] == '\n'))
                depth = 0;
            continue;
        }
        if (blank(c) || c == '\r')
            continue;
        bool token_start = i == ls || blank(t[i - 1]) ||
                           (depth > 0 && (t[i - 1] == '[' || t[i - 1] == '{' || t[i - 1] == ','));
        if (c == '#' && (i == ls || blank(t[i - 1]))) {
            while (i + 1 < len && t[i + 1] != '\n')
                i++;
            continue;
        }
        if ((c == '"' || c == '\'') && (token_start || (depth > 0 && t[i - 1] == ':'))) {
            skip_quoted(t, len, &i, &line, &ls);
            prev = c;
            continue;
        }
        bool value_start = prev == '\n' || prev == ':' || prev == '-' || prev == '?';
        if (depth == 0 && (c == '|' || c == '>') && token_start && value_start) {
            /* A block scalar: its content is the lines indented more than
             * this one (or blank). */
            size_t indent = 0;
            while (ls + indent < i && t[ls + indent] == ' ')
                indent++;
            while (i < len && t[i] != '\n')
                i++;
            while (i < len) { /* at the '\n' ending a line of the scalar */
                size_t n = i + 1, k = 0;
                while (n + k < len && t[n + k] == ' ')
                    k++;
                bool empty = n + k >= len || t[n + k] == '\n' || t[n + k] == '\r';
                if (!empty && k <= indent)
                    break;
                const char *nl = memchr(t + n, '\n', len - n);
                line++;
                ls = n;
                i = nl ? (size_t)(nl - t) : len;
            }
            i--; /* the loop's i++ lands on the '\n' */
            prev = '\n';
            continue;
        }
        if ((c == '[' || c == '{') && (depth > 0 || (token_start && value_start))) {
            if (++depth > RC_Y_MAX_DEPTH) {
                e->problem = "nested deeper than " RC_Y_STR(RC_Y_MAX_DEPTH) " levels";
                e->mark.index = i;
                e->mark.line = line;
                e->mark.column = i - ls;
                e->refused = true;
                return 1;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
        prev = c;
    }
    return 0;
}
