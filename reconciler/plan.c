/* Plan rendering: text and JSON views of a struct rc_diff (see plan.h). */
#include "reconciler/plan.h"

#include <stdlib.h>
#include <string.h>

#include "reconciler/diff.h"

#define NO_CHANGES "No changes. The running configuration matches the manifests.\n"

/* One value as it appears in the text: JSON, "(none)" when absent. */
static int put_value(FILE *f, const json_t *v)
{
    if (v == NULL)
        return fputs("(none)", f) < 0 ? -1 : 0;
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (s == NULL)
        return -1;
    int rc = fputs(s, f) < 0 ? -1 : 0;
    free(s);
    return rc;
}

/* Whether path is under top ("labels", "labels.team"). */
static bool under(const char *path, const char *top)
{
    size_t n = strlen(top);
    return strncmp(path, top, n) == 0 && (path[n] == '\0' || path[n] == '.');
}

/* An update of labels, annotations or namespace only: /config changes,
 * what albd does with traffic does not. */
static bool metadata_only(const struct rc_diff_change *ch)
{
    if (ch->action != RC_DIFF_UPDATE || ch->n_fields == 0)
        return false;
    for (size_t i = 0; i < ch->n_fields; i++) {
        const char *p = ch->fields[i].path;
        if (!under(p, "labels") && !under(p, "annotations") && !under(p, "namespace"))
            return false;
    }
    return true;
}

static int put_change(FILE *f, const struct rc_diff_change *ch)
{
    static const char sign[] = {
        [RC_DIFF_CREATE] = '+', [RC_DIFF_UPDATE] = '~', [RC_DIFF_DELETE] = '-'};
    if (fprintf(f, "  %c %s/%s%s\n", sign[ch->action], ch->kind, ch->name,
                metadata_only(ch) ? " (metadata only)" : "") < 0)
        return -1;
    if (ch->action == RC_DIFF_DELETE)
        return 0;
    for (size_t i = 0; i < ch->n_fields; i++) {
        const struct rc_diff_field *fl = &ch->fields[i];
        const char *path = fl->path;
        if (ch->action == RC_DIFF_CREATE) {
            /* A new resource reads like its manifest: spec is implied and
             * "no labels" goes without saying. */
            if (strcmp(path, "labels") == 0 && json_is_object(fl->new) &&
                json_object_size(fl->new) == 0)
                continue;
            if (strncmp(path, "spec.", 5) == 0)
                path += 5;
            if (fprintf(f, "      %s: ", path) < 0 || put_value(f, fl->new) != 0)
                return -1;
        } else if (fprintf(f, "      %s: ", path) < 0 || put_value(f, fl->old) != 0 ||
                   fputs(" \u2192 ", f) < 0 || put_value(f, fl->new) != 0) {
            return -1;
        }
        if (fputc('\n', f) == EOF)
            return -1;
    }
    return 0;
}

static int put_plan(FILE *f, const struct rc_diff *d)
{
    if (!rc_diff_has_changes(d))
        return fputs(NO_CHANGES, f) < 0 ? -1 : 0;
    for (size_t i = 0; i < d->n_changes; i++)
        if (put_change(f, &d->changes[i]) != 0)
            return -1;
    if (fprintf(f, "\nPlan: %zu to add, %zu to change, %zu to destroy.\n", d->n_create, d->n_update,
                d->n_delete) < 0)
        return -1;
    return 0;
}

char *rc_plan_text(const struct rc_diff *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    int rc = put_plan(f, d);
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int rc_plan_write_text(const struct rc_diff *d, FILE *out)
{
    char *text = rc_plan_text(d);
    if (text == NULL)
        return -1;
    int rc = fputs(text, out) < 0 ? -1 : 0;
    free(text);
    return rc;
}

/* json_null() for an absent side, else a new reference to v. */
static json_t *value_or_null(json_t *v)
{
    return v != NULL ? json_incref(v) : json_null();
}

static json_t *change_json(const struct rc_diff_change *ch)
{
    json_t *o = json_object();
    json_t *fields = json_array();
    if (o == NULL || fields == NULL)
        goto fail;
    if (json_object_set_new(o, "action", json_string(rc_diff_action_name(ch->action))) != 0 ||
        json_object_set_new(o, "kind", json_string(ch->kind)) != 0 ||
        json_object_set_new(o, "name", json_string(ch->name)) != 0)
        goto fail;
    for (size_t i = 0; i < ch->n_fields; i++) {
        const struct rc_diff_field *fl = &ch->fields[i];
        json_t *f = json_object();
        if (json_array_append_new(fields, f) != 0 ||
            json_object_set_new(f, "path", json_string(fl->path)) != 0 ||
            json_object_set_new(f, "old", value_or_null(fl->old)) != 0 ||
            json_object_set_new(f, "new", value_or_null(fl->new)) != 0)
            goto fail;
    }
    if (json_object_set_new(o, "fields", fields) != 0) {
        fields = NULL;
        goto fail;
    }
    return o;
fail:
    json_decref(fields);
    json_decref(o);
    return NULL;
}

json_t *rc_plan_json(const struct rc_diff *d)
{
    json_t *root = json_object();
    json_t *changes = json_array();
    json_t *summary = json_object();
    if (root == NULL || changes == NULL || summary == NULL)
        goto fail;
    for (size_t i = 0; i < d->n_changes; i++)
        if (json_array_append_new(changes, change_json(&d->changes[i])) != 0)
            goto fail;
    if (json_object_set_new(summary, "add", json_integer((json_int_t)d->n_create)) != 0 ||
        json_object_set_new(summary, "change", json_integer((json_int_t)d->n_update)) != 0 ||
        json_object_set_new(summary, "destroy", json_integer((json_int_t)d->n_delete)) != 0 ||
        json_object_set_new(root, "format_version", json_string("1")) != 0)
        goto fail;
    /* set_new consumes its value even when it fails, so each pointer is
     * cleared as soon as root owns (or has freed) it. */
    json_t *c = changes, *s = summary;
    changes = summary = NULL;
    if (json_object_set_new(root, "changes", c) != 0) {
        json_decref(s);
        goto fail;
    }
    if (json_object_set_new(root, "summary", s) != 0)
        goto fail;
    return root;
fail:
    json_decref(changes);
    json_decref(summary);
    json_decref(root);
    return NULL;
}

int rc_plan_write_json(const struct rc_diff *d, FILE *out)
{
    json_t *root = rc_plan_json(d);
    if (root == NULL)
        return -1;
    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (rc != 0 || fputc('\n', out) == EOF)
        return -1;
    return 0;
}
