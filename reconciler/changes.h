/* What changed in the manifest folder since the running model was loaded,
 * as the agent's watcher saw it, so that a reload checks only those files.
 *
 * A load normally checks each certificate, key and manifest file it knows
 * from the running model with one stat (the identity rule of filecache.h).
 * With 10,000 certificates that stat is most of a reload's cost, and the
 * watcher already knows which few paths changed. A file may skip that stat
 * only when an inotify event would have named it: it was a plain file in
 * the folder's tree when read — no symbolic link on its way (the ConfigMap
 * "..data" layout goes through links), a single hard link (a write through
 * another name raises no event here), not a mount point of its own (a file
 * bind mount is written through its source's folder; a kernel that cannot
 * tell counts as one), not too deep to be watched — and the
 * watcher has not reported it or a folder above it since. Everything else
 * is still checked as before. */
#ifndef ALBD_RECONCILER_CHANGES_H
#define ALBD_RECONCILER_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Paths relative to the manifest folder ("certs/a.pem"); a folder's path
 * stands for everything below it, and "" for the whole tree. */
struct rc_changes {
    const char *const *rel; /* sorted with strcmp, may repeat */
    size_t n;
    /* Something was created, removed or renamed (or a folder's mode
     * changed): the folder is walked again. Otherwise the load takes the
     * running model's list of manifest files. */
    bool tree;
    /* Folders outside the manifest folder (absolute, sorted) whose files
     * the watcher reports too, by absolute path in rel, since before the
     * running model's load (agent/watch.h ag_watch_trusted_extra): a
     * certificate or key file directly in one of them is taken like a
     * file of the tree. */
    const char *const *trusted;
    size_t n_trusted;
    /* With tree: every creation, removal or rename was of a file named in
     * rel — no folder came, went, moved or changed mode. The load then
     * takes the running model's list of manifest files and looks only at
     * the named paths again (load.c). */
    bool files_only;
};

/* True when rel, or a folder above it, is in c. */
bool rc_changes_cover(const struct rc_changes *c, const char *rel);

/* True when the absolute path is a file directly in one of c's trusted
 * folders and neither it nor its folder is in c: no event named it. */
bool rc_changes_vouch_abs(const struct rc_changes *c, const char *path);

/* rc_changes_cover and rc_changes_vouch_abs for many files of a few
 * folders in a row (a reload checks 10,000 certificate files of one
 * folder): what depends on the folder alone is worked out once per folder
 * and kept in *m. The same answers as the functions above. Zero *m before
 * the first call, use it with one c only, rc_cover_memo_free() after. */
struct rc_cover_memo {
    /* The last two folders asked about (a certificate's folder and its
     * key's may differ and alternate). */
    struct rc_cover_folder {
        char *dir; /* malloc'd, grown only; NULL: none */
        size_t len, cap;
        bool used;
        bool covered;     /* "", that folder or a folder above it is in c */
        bool has_trusted; /* trusted is worked out (rc_changes_vouch_abs_m) */
        bool trusted;     /* that folder is one of c's trusted folders */
    } f[2];
    unsigned next; /* the one to replace on a miss */
};
bool rc_changes_cover_m(const struct rc_changes *c, const char *rel, struct rc_cover_memo *m);
bool rc_changes_vouch_abs_m(const struct rc_changes *c, const char *path, struct rc_cover_memo *m);
void rc_cover_memo_free(struct rc_cover_memo *m);

/* The part of the absolute path under root ("certs/a.pem" for
 * "/m/certs/a.pem" under "/m"), or NULL when path is not below root. */
const char *rc_rel_under(const char *root, const char *path);
/* The same with root's length given (what rc_root_len(root) says), for
 * many paths under one root. */
size_t rc_root_len(const char *root);
const char *rc_rel_under_len(const char *root, size_t n, const char *path);

/* Whether the file at path (rel under the manifest folder), whose fstat is
 * st, is one the watcher reports: see above. real_expected is what
 * realpath(path) must be: path itself for a certificate file (its path is
 * built on the folder's real path), the folder's real path + "/" + rel for
 * a manifest file (walked from the folder as given). */
bool rc_watchable(const char *path, const struct stat *st, const char *rel,
                  const char *real_expected);

#endif
