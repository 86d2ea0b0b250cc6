/* Fuzz target: one manifest file through the reconciler, as `albd validate`
 * and the agent read it: YAML parse, schema validation, the model build
 * (semantic rules, references) and the canonical walk (ynode.c) that the
 * spec digests and uniqueItems use; then, for every document on its own,
 * rc_doc_parse, rc_schema_validate_doc and rc_y_canonical directly.
 *
 * Asserts: no crash, no sanitizer report, no leak, a located error for
 * every failure (an RC_ERROR entry has a message), and, run by libFuzzer
 * with -timeout and -rss_limit_mb (make fuzz), bounded time and memory. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "reconciler/doc.h"
#include "reconciler/rc.h"
#include "reconciler/schema.h"

static char dir[64];
static char file[96];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void)
{
    unlink(file);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/albd-fuzz-XXXXXX", tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(file, sizeof file, "%s/m.yaml", dir);
    atexit(cleanup);
    return 0;
}

/* Each document alone, through the entry points the lazy path uses. */
static void each_document(const uint8_t *data, size_t size)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return;
    yaml_parser_set_input_string(&parser, data, size);
    for (int docs = 0; docs < 64; docs++) {
        yaml_document_t y;
        if (!yaml_parser_load(&parser, &y))
            break;
        yaml_node_t *root = yaml_document_get_root_node(&y);
        if (!root) {
            yaml_document_delete(&y);
            break;
        }
        size_t start = root->start_mark.index, end = root->end_mark.index;
        if (start <= end && end <= size) {
            /* Parse the document again from its own text, as a kept
             * source is (docparse.c). */
            struct rc_doc d = {.file = "m.yaml", .file_src = "m.yaml", .dir = "/nonexistent"};
            d.src_text = (const char *)data + start;
            d.src_len = end - start;
            d.src_line = (int)root->start_mark.line + 1;
            d.src_col = (int)root->start_mark.column + 1;
            d.file_index = SIZE_MAX;
            d.lazy = true;
            if (rc_doc_parse(&d) == 0) {
                struct rc_errs errs = {0};
                rc_schema_validate_doc(&d, &errs);
                for (size_t i = 0; i < errs.n; i++)
                    if (!errs.v[i].msg || !errs.v[i].msg[0])
                        abort();
                rc_errs_cleanup(&errs);
                yaml_node_t *r = yaml_document_get_root_node(d.y);
                size_t len = 0;
                char *canon = r ? rc_y_canonical(d.y, r, &len) : NULL;
                if (canon && strlen(canon) != len)
                    abort();
                free(canon);
                rc_doc_free_tree(&d);
            }
        }
        yaml_document_delete(&y);
    }
    yaml_parser_delete(&parser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!file[0])
        LLVMFuzzerInitialize(NULL, NULL);
    FILE *f = fopen(file, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    struct rc_errs errs = {0};
    struct rc_model *m = NULL;
    int rc = rc_load_dir(dir, 1893456000 /* 2030-01-01 */, &m, &errs);
    if ((rc == 0) != (m != NULL) || (rc != 0 && rc_errs_count_errors(&errs) == 0))
        abort(); /* a failure must say why; a success must give a model */
    for (size_t i = 0; i < errs.n; i++)
        if (!errs.v[i].msg || !errs.v[i].msg[0])
            abort();
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    each_document(data, size);
    return 0;
}
