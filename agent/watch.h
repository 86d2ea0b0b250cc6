/* Watches a manifest directory tree with one inotify instance, driven by a
 * uv_poll on the agent loop. Any change re-arms a debounce timer; when the
 * tree has been quiet for the debounce period the callback runs. */
#ifndef ALBD_AGENT_WATCH_H
#define ALBD_AGENT_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct ag_watch;
typedef void (*ag_watch_cb)(struct ag_watch *w, void *arg);

/* Paths that changed under the watched folder, relative to it ("a.yaml",
 * "certs/x.pem"; a folder's path stands for everything below it), for the
 * loader (reconciler/changes.h). all: not known — an inotify overflow, a
 * folder that could not be watched, or too many paths to list. */
struct ag_changes {
    char **v;
    size_t n, cap;
    bool all;
    bool tree; /* something was created, removed or renamed: walk again */
    bool dirs; /* among that, a folder (created, removed, renamed, its mode) */
};

/* Moves every path of from into into (from ends empty). */
void ag_changes_merge(struct ag_changes *into, struct ag_changes *from);
/* Empties c (all = false) and frees its paths. */
void ag_changes_clear(struct ag_changes *c);

/* Starts watching dir recursively. cb runs on loop after debounce_ms of
 * quiet — a few milliseconds only when the last change was complete by
 * construction (a file renamed into place or away, or deleted), enough to
 * take one burst of renames together — and once no file written to is
 * still open for writing (at most 2 s), so a slow truncate-then-write save
 * is read only when complete — following any change (files written, renamed, created, deleted,
 * folders added or removed, the ConfigMap "..data" link swapped) and after
 * an inotify queue overflow (which also re-adds every watch).
 *
 * What dir/.albdignore ignores (reconciler/ignore.h) raises no callback,
 * and ignored folders are not watched; a change of the ignore file (an
 * event naming it, or different bytes when a load begins) watches the tree
 * again and makes the next load check every file. Each symbolic link among
 * the components of dir's path (dir itself a release link, or a link on
 * the way to it) is watched through its parent folder for its own name, so
 * re-pointing it raises the callback; ag_watch_take_changes then follows
 * it. Returns 0 or a negative errno. */
int ag_watch_start(uv_loop_t *loop, const char *dir, unsigned debounce_ms, ag_watch_cb cb,
                   void *arg, struct ag_watch **out);

/* A counter of changes seen so far. Read it before loading the manifests
 * and call ag_watch_changed_since() after: true means something changed
 * while they were read, so the load must not be applied (the callback will
 * run again after the debounce). */
uint64_t ag_watch_mark(struct ag_watch *w);
bool ag_watch_changed_since(struct ag_watch *w, uint64_t mark);

/* Reads the queued events, then moves the paths seen changing since the
 * last call into *into. When dir now resolves to another folder (a link
 * re-pointed) or its .albdignore changed, watches the tree again and
 * marks *into "all". Call it before ag_watch_mark(), when a load
 * begins. */
void ag_watch_take_changes(struct ag_watch *w, struct ag_changes *into);

/* True while a file the watcher saw written to has not been closed by its
 * writer (an in-place save under way, its content possibly truncated or
 * half-written), for at most 2 s; the debounce timer is armed meanwhile
 * and raises the callback once the writer closes. Ask after
 * ag_watch_take_changes(). */
bool ag_watch_writing(const struct ag_watch *w);

/* The real path of the watched folder (NULL if unknown). */
const char *ag_watch_root(const struct ag_watch *w);

/* Also watches these folders outside the tree (absolute, sorted), each
 * alone: those of certificate and key files the running configuration
 * reads, so that a renewal written there (certbot swapping its live/
 * links, a rewrite in /etc/ssl) reconciles like a change in the tree.
 * Replaces the previous set; a folder that does not exist is skipped. */
void ag_watch_set_extra(struct ag_watch *w, const char *const *dirs, size_t n);

/* How many times ag_watch_take_changes was called: the agent notes it for
 * the load whose model runs (see ag_watch_trusted_extra). */
uint64_t ag_watch_epoch(const struct ag_watch *w);

/* The extra folders (ag_watch_set_extra) watched without a break since
 * before epoch `before` — the start of the running model's load — as a
 * sorted malloc'd list of copies (free with ag_watch_free_list); NULL and
 * *n = 0 when none or out of memory. Every change to a file in them since
 * that load began is among the changes (its absolute path, or the
 * folder's), or that load would have been read again: the next load may
 * take such a file, when no change names it, without a stat
 * (reconciler/changes.h). A folder watched later is not listed: its files
 * were read before its watch began. */
char **ag_watch_trusted_extra(struct ag_watch *w, uint64_t before, size_t *n);
void ag_watch_free_list(char **v, size_t n);

/* The extra folders whose watch began during the current epoch (after
 * this load's files were read), sorted copies as above. */
char **ag_watch_fresh_extra(struct ag_watch *w, size_t *n);

/* Counts the folders dirs[i] (sorted) with ok[i] as watched since before
 * any load: the caller checked, after their watch began, that every file
 * the running model read there still has the identity it was read with,
 * so any change since that read either showed in that check or raises an
 * event. */
void ag_watch_vouch_extra(struct ag_watch *w, char *const *dirs, const bool *ok, size_t n);

/* Stops watching; frees in the close callbacks. NULL is a no-op. */
void ag_watch_close(struct ag_watch *w);

#endif
