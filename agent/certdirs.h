/* The folders outside the manifest folder that hold certificate and key
 * files (and the folders their symbolic links point into: certbot's
 * live/ -> archive/), kept across reconciles so that a change costs what
 * changed: a certificate seen before with the same digest and paths is not
 * looked at again (no lstat, no realpath), and the folder list is rebuilt only
 * when a folder gains its first file or loses its last. The watcher
 * watches these folders (agent/watch.h ag_watch_set_extra). */
#ifndef ALBD_AGENT_CERTDIRS_H
#define ALBD_AGENT_CERTDIRS_H

#include <stdbool.h>
#include <stddef.h>

struct rc_model;
struct rc_kept_files;
struct ag_certdirs;

/* A new, empty tracker, or NULL when out of memory. */
struct ag_certdirs *ag_certdirs_new(void);

/* Frees cd (NULL is fine). */
void ag_certdirs_free(struct ag_certdirs *cd);

/* Brings cd to m's certificates read from files, root being the manifest
 * folder's real path (NULL: none; files under it are watched with the
 * tree and give no folder). A certificate's files are looked at (lstat,
 * realpath) when it is new to cd (by name) or its digest or paths changed
 * (a renewal, a link re-pointed to new bytes, a new spec); a new root
 * looks at every file again. Returns
 * true when the folder set changed since the last call (always on the
 * first), false when it did not or when memory ran out (then the set is
 * forgotten and the next call rebuilds it). */
bool ag_certdirs_update(struct ag_certdirs *cd, const struct rc_model *m, const char *root);

/* The folders, sorted, without duplicates; valid until the next update
 * or free. */
const char *const *ag_certdirs_list(const struct ag_certdirs *cd, size_t *n);

/* How many files the last update looked at (for tests and the debug
 * log). */
size_t ag_certdirs_looked(const struct ag_certdirs *cd);

/* For each folder dirs[i] (n, sorted): ok[i] is set true when every file
 * of kept directly in it that a load may take without a stat (settled,
 * watchable) still has the identity it was read with (one stat each), else
 * false. Called once the watcher watches those folders: then a change made
 * since the read shows here, and one made later raises an event. */
void ag_certdirs_check_fresh(const struct rc_kept_files *kept, char *const *dirs, bool *ok,
                             size_t n);

#endif
