/* Rendering a diff the way `albd plan` shows it: text like `terraform plan`
 * or JSON for machines. These only format: the agent prints and chooses
 * the exit code (rc_diff_has_changes()). Values come from the exported
 * configuration, which holds no secret, so neither output can leak one. */
#ifndef ALBD_RECONCILER_PLAN_H
#define ALBD_RECONCILER_PLAN_H

#include <stdio.h>
#include <jansson.h>

#include "reconciler/diff-t.h"

/* Text form:
 *
 *     + ServerGroup/api
 *         protocol: "HTTP"
 *     ~ Listener/web-https
 *         spec.idleTimeoutSeconds: 15 → 30
 *     - Certificate/legacy
 *
 *   Plan: 1 to add, 1 to change, 1 to destroy.
 *
 * (each line above starts two spaces in). A create lists every field of
 * the new resource with "spec." dropped (and empty labels left out); an update lists each changed
 * field as "path: old → new" with "(none)" for an absent side; a delete lists only the resource.
 * Values are JSON (strings quoted). With no change the whole text is "No changes. The running
 * configuration matches the manifests.\n". Returns a malloc'd NUL-terminated string (caller
 * free()s) or NULL on OOM. */
char *rc_plan_text(const struct rc_diff *d);

/* Writes rc_plan_text() to out. Returns 0, or -1 on OOM or write error. */
int rc_plan_write_text(const struct rc_diff *d, FILE *out);

/* JSON form:
 *   {"format_version": "1",
 *    "changes": [{"action": "create|update|delete", "kind": "...", "name": "...",
 *                 "fields": [{"path": "...", "old": <json|null>, "new": <json|null>}]}],
 *    "summary": {"add": n, "change": n, "destroy": n}}
 * in the diff's order; null stands for an absent side. Returns a new
 * reference or NULL on OOM. */
json_t *rc_plan_json(const struct rc_diff *d);

/* rc_plan_json() dumped (indented, sorted keys, trailing newline) to out.
 * Returns 0, or -1 on OOM or write error. */
int rc_plan_write_json(const struct rc_diff *d, FILE *out);

#endif
