/* Loaded manifest documents and the YAML node helpers that the schema
 * validator and the model builder share. Internal to the reconciler. */
#ifndef ALBD_RECONCILER_DOC_H
#define ALBD_RECONCILER_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "reconciler/err-t.h"

struct rc_certificate;
struct rc_source;
struct rc_y_diag;

/* One YAML document of one manifest file, or the kept source of a resource
 * of the previous model that is rebuilt as its last good version. */
struct rc_doc {
    /* (Pointers, then sizes, then ints, then flags: a reload holds one per
     * document of the whole folder, 10,000 and more, and the padding
     * between mixed fields was 24 bytes of each.) */

    /* The path as walked, copied into the arena of the model being built
     * (each build pass has its own arena: see load.c); file_src is the
     * load-scoped original. */
    const char *file;
    const char *file_src;
    const char *dir; /* absolute folder of the file: relative paths start here */
    /* Its parsed tree (malloc'd: rc_doc_take_tree, rc_doc_load_tree), NULL
     * while lazy: a pointer, so that the 10,000 lazy documents of a reload
     * do not each carry an unused 104-byte yaml_document_t. */
    yaml_document_t *y;
    const char *kind; /* a known kind (static string) or NULL */
    const char *name; /* metadata.name when it is a string, else NULL */
    /* The document's text as written (its root node's byte range, src_len
     * bytes), kept in the model so that a later load can rebuild this
     * version; src_line and src_col are where it starts in file
     * (1-based). */
    const char *src_text;
    /* Certificates: where the PEM bytes come from instead of the files.
     * fallback_cert: the previous model's version (a resource kept at its
     * last good version never re-reads files that may have changed);
     * pass1_cert: what the first build pass read (later passes of the same
     * load see the same bytes). NULL: read the files. */
    const struct rc_certificate *fallback_cert;
    const struct rc_certificate *pass1_cert;
    /* The running model's source of this resource when the document is
     * byte-identical to it (load.c same_as_prev), else NULL. */
    const struct rc_source *prev_src;
    /* What the latest build pass made of it (a struct in that pass's model)
     * and whether that was copied from prev_src->res (reused, below). */
    const void *built;
    /* Its source in the model the load returns (contain.c keep_sources). */
    const struct rc_source *kept;

    size_t src_len;
    size_t file_index; /* the manifest file it came from (load.c), or SIZE_MAX */
    /* Bytes the latest pass's build of it allocated in the pass's data
     * arena (0 when copied): its share of that arena (source.h bytes). */
    size_t built_bytes;

    int src_line, src_col;
    /* Added to every line number of y (a rebuilt source starts at line 1 of
     * its own text, not of the file). */
    int line_base;
    /* The build pass (rc_load.pass) that copied file into its data arena
     * for what the build keeps (locations in the model live as long as the
     * model); 0 while file is the load-scoped path: build.h
     * rc_doc_own_file. A pass number, not the arena's address: a failed
     * pass's arena is freed and the next one may get its address. */
    int file_pass;

    bool schema_ok; /* no schema error: the model builder may trust its shape */
    bool reused;    /* built was copied from prev_src->res */
    /* The copy allocated in the pass's data arena (a group moved in its
     * file gets its servers with the new lines there): a later load would
     * keep only prev_src->origin alive, not that arena, so it must build
     * this resource again rather than copy it (contain.c keep_sources). */
    bool copy_local;
    /* The latest build pass left one of its rules out (a Listener whose rule
     * forwards to an invalid group, rc_contain_rule): what it built must not
     * be copied by a later load, which may find the group valid again. */
    bool rules_contained;
    /* y is not parsed yet: the document was taken from the running model
     * (an unchanged manifest file, load.c) and is parsed from src_text only
     * when something needs its nodes (rc_doc_parse). */
    bool lazy;
};

/* Makes the loaded tree *y d's (moved: *y is d's to delete now). Returns 0,
 * or -1 when out of memory (*y is deleted then). */
int rc_doc_take_tree(struct rc_doc *d, yaml_document_t *y);

/* rc_y_load() of p's next document as d's tree: the same returns; d->y is
 * set only on 1. */
int rc_doc_load_tree(struct rc_doc *d, yaml_parser_t *p, size_t *budget, struct rc_y_diag *e);

/* Deletes and frees d's tree, if it has one; d->y is NULL after. */
void rc_doc_free_tree(struct rc_doc *d);

/* The root node of d's tree; NULL when it has none (lazy, as an empty
 * document's). */
static inline yaml_node_t *rc_doc_root(const struct rc_doc *d)
{
    return d->y ? yaml_document_get_root_node(d->y) : NULL;
}

/* Parses d->src_text (one document starting at src_line:src_col of its
 * file) into d->y, so that node locations are those in the file; clears
 * d->lazy. Returns 0, 1 when the text is not one YAML document, or -1 when
 * out of memory. */
int rc_doc_parse(struct rc_doc *d);

/* What a manifest may hold: collections nested at most RC_Y_MAX_DEPTH deep
 * and at most RC_Y_MAX_NODES nodes per file (a file of 10,000 Certificate
 * documents has about 190,000; each node costs libyaml about 160 bytes), no
 * anchors and no aliases. */
#define RC_Y_MAX_DEPTH 64
#define RC_Y_MAX_NODES 1000000

/* Why rc_y_load failed: libyaml's problem and context (static strings that
 * never quote the input) or one of ours, where (mark: 0-based, of the
 * parser's input), and whether it was only memory. */
struct rc_y_diag {
    const char *problem;
    const char *context; /* may be NULL */
    yaml_mark_t mark;
    bool nomem;
    bool refused; /* valid YAML, but not what a manifest may hold */
};

/* Loads the next document of p into y like yaml_parser_load (same nodes,
 * tags and marks; a document with no root node at the end of the stream),
 * but refuses anchors, aliases, nesting deeper than RC_Y_MAX_DEPTH, and
 * more nodes than *budget (decremented by the nodes loaded: one budget per
 * file), each at the event where it appears, so that the cost of a load
 * stays proportional to its input. Returns 1 with y loaded (the caller
 * deletes it), 0 when the input is refused (*e says why and where), or -1
 * when out of memory; y holds nothing to delete unless 1 is returned. */
int rc_y_load(yaml_parser_t *p, yaml_document_t *y, size_t *budget, struct rc_y_diag *e);

/* Scans text (len bytes, what a parser is about to be given) for flow
 * collections nested deeper than RC_Y_MAX_DEPTH, before libyaml sees it:
 * libyaml's cost grows with the square of flow nesting. Comments, quoted
 * scalars and block scalars are skipped; it may miss nesting that
 * rc_y_load then refuses, and refuses correct YAML only with 65 unclosed
 * '[' or '{' starting continuation lines of plain scalars. Returns 0, or
 * 1 with *e saying where. Time: one pass over text. */
int rc_y_prescan(const char *text, size_t len, struct rc_y_diag *e);

/* YAML 1.2 core-schema types of a node; quoted scalars are always strings. */
enum rc_ytype { RC_Y_NULL, RC_Y_BOOL, RC_Y_INT, RC_Y_FLOAT, RC_Y_STR, RC_Y_MAP, RC_Y_SEQ };

struct rc_yval {
    enum rc_ytype type;
    bool b;      /* RC_Y_BOOL */
    long long i; /* RC_Y_INT (saturated when out of range) */
    double d;    /* RC_Y_INT and RC_Y_FLOAT */
};

/* Classifies node n (never NULL). */
void rc_y_classify(const yaml_node_t *n, struct rc_yval *out);

/* The JSON Schema name of a node's type ("integer", "string", ...). */
const char *rc_y_type_name(const yaml_node_t *n);

/* The text of a scalar node, NULL for other nodes. */
const char *rc_y_str(const yaml_node_t *n);

/* The value of key in mapping map, or NULL (also when map is not a mapping). */
yaml_node_t *rc_y_get(yaml_document_t *d, const yaml_node_t *map, const char *key);

/* The key node of key in mapping map (to locate "unknown field" errors). */
yaml_node_t *rc_y_get_key(yaml_document_t *d, const yaml_node_t *map, const char *key);

/* The node's start as a 1-based location in doc's file. */
struct rc_loc rc_y_loc(const struct rc_doc *doc, const yaml_node_t *n);

/* A canonical text of the subtree at n: mapping keys sorted, scalars by their
 * resolved type, so equal content gives equal bytes whatever the layout.
 * Returns a malloc'd NUL-terminated string (length in *len), or NULL when
 * out of memory or when the walk would visit more nodes than d holds or go
 * deeper than RC_Y_MAX_DEPTH (shared nodes: rc_y_load never makes them, a
 * document built otherwise may). */
char *rc_y_canonical(yaml_document_t *d, const yaml_node_t *n, size_t *len);

#endif
