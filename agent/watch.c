#include "agent/watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "reconciler/ignore.h"
#include "reconciler/load.h"
#include "reconciler/readall.h"

static void on_debounce(uv_timer_t *t);
static int drain_events(struct ag_watch *w);
static bool link_wd(const struct ag_watch *w, int wd);

enum {
    WATCH_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                 IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR,
    MAX_DEPTH = 32,
    /* Beyond this many changed paths (a git checkout of everything) the
     * loader checks every file anyway. */
    MAX_CHANGES = 4096,
};

/* The directories watched, by watch descriptor (for adding subfolders). */
struct wdir {
    int wd;
    char *path;
    bool extra;     /* a folder outside the tree (ag_watch_set_extra), watched alone */
    uint64_t since; /* extra: the epoch (ag_watch_epoch) when its watch was added */
    struct wdir *next;
};

/* A symbolic link on the way to the watched folder (git-sync's --link,
 * Capistrano's current), watched through its parent folder: re-pointing it
 * (a rename over it, or a delete and a create) changes nothing in the tree
 * being watched, which is the old target. */
struct link_watch {
    int wd; /* of parent */
    char *parent;
    char *name; /* the link's name in parent */
};

enum { MAX_LINKS = 16 };

/* A file written to (IN_MODIFY) whose writer has not closed it yet
 * (IN_CLOSE_WRITE): its content may be half-written. */
struct open_write {
    int wd;
    char *name;
};

/* How long a file may stay open for writing before the tree is read
 * anyway (a process that keeps a manifest open must not block reloads). */
enum { OPEN_WRITE_MAX_MS = 2000 };

/* The quiet wait after a change that is complete by construction — a file
 * renamed into place (write-then-rename, a link swapped) — with no file
 * still open for writing: long enough to take the renames of one burst
 * together (a Certificate and the Listener that names it, a key and its
 * certificate), far shorter than the debounce an in-place save needs. Any
 * other event after it (a write begun) brings the debounce back. A
 * manifest deleted or moved away in the burst keeps the debounce: editors
 * save by moving the old file aside (vim's default: a.yaml to a.yaml~) or
 * deleting it, then creating the new one, and a load between the two
 * would apply the file's resources as deleted. */
enum { COMPLETE_SETTLE_MS = 3 };

struct ag_watch {
    uv_loop_t *loop;
    char *dir;
    int fd;
    uv_poll_t poll;
    uv_timer_t debounce;
    unsigned debounce_ms;
    ag_watch_cb cb;
    void *arg;
    uint64_t changes;
    uint64_t epoch; /* ag_watch_take_changes calls so far */
    struct wdir *dirs;
    struct open_write *writing;
    size_t n_writing, cap_writing;
    uint64_t writing_since; /* uv_now when writing became non-empty */
    struct ag_changes seen; /* since the last ag_watch_take_changes */
    char *real;             /* realpath of dir when its tree was watched */
    char **extra;           /* ag_watch_set_extra's folders, to watch again after a rescan */
    size_t n_extra;
    bool degraded; /* a folder could not be watched: changes are never known */
    int closing;   /* handles still to close */
    struct link_watch links[MAX_LINKS];
    size_t n_links;
    /* The folder's .albdignore (reconciler/ignore.h) and its bytes: events
     * for what it ignores reconcile nothing, and ignored folders are not
     * watched. NULL / "" without one. */
    struct rc_ignore *ig;
    char *ig_text;
    size_t ig_len;
    bool relinked; /* a link on the way to the folder was replaced */
    /* The last relevant event read was a rename into place, and no
     * manifest was deleted or moved away since the last call-back
     * (COMPLETE_SETTLE_MS applies rather than the debounce). */
    bool complete;
    bool manifest_gone;
};

void ag_changes_clear(struct ag_changes *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i]);
    c->n = 0;
    c->all = false;
    c->tree = false;
    c->dirs = false;
}

/* Adds rel (taken) to c; beyond MAX_CHANGES, c becomes "all". */
static void changes_add(struct ag_changes *c, char *rel)
{
    if (rel == NULL || c->all) {
        free(rel);
        c->all = true;
        return;
    }
    if (c->n && strcmp(c->v[c->n - 1], rel) == 0) {
        free(rel); /* the same file again: writes come in runs of events */
        return;
    }
    if (c->n == MAX_CHANGES) {
        free(rel);
        ag_changes_clear(c);
        c->all = true;
        return;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        char **v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            free(rel);
            c->all = true;
            return;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = rel;
}

void ag_changes_merge(struct ag_changes *into, struct ag_changes *from)
{
    if (from->all)
        into->all = true;
    into->tree = into->tree || from->tree;
    into->dirs = into->dirs || from->dirs;
    for (size_t i = 0; i < from->n; i++)
        changes_add(into, from->v[i]);
    from->n = 0;
    from->all = false;
    from->tree = false;
    from->dirs = false;
    if (into->all) {
        ag_changes_clear(into); /* the paths say nothing more than "all" */
        into->all = true;
    }
}

static struct wdir *find_wd(struct ag_watch *w, int wd)
{
    for (struct wdir *d = w->dirs; d; d = d->next)
        if (d->wd == wd)
            return d;
    return NULL;
}

/* Whether rel (relative to the watched folder) is ignored by .albdignore.
 * Hidden entries at the top never are: the load does not read them by
 * name anyway, and the ConfigMap layout's "..data" swap is how its files
 * change (a ".*" pattern must not stop the watch). */
static bool ignored_rel(const struct ag_watch *w, const char *rel, bool is_dir)
{
    return w->ig != NULL && *rel && *rel != '.' && rc_ignore_path(w->ig, rel, is_dir);
}

/* Whether path (below the watched folder) is ignored by .albdignore. */
static bool ignored(const struct ag_watch *w, const char *path, bool is_dir)
{
    size_t n = strlen(w->dir);
    if (w->ig == NULL || strncmp(path, w->dir, n) != 0)
        return false;
    const char *rel = path + n;
    while (*rel == '/')
        rel++;
    return ignored_rel(w, rel, is_dir);
}

/* Adds a watch on path and, recursively, on its subfolders. Hidden folders
 * are watched too: Kubernetes' "..2026_..." data folders live there, and a
 * change inside them is followed by the "..data" swap anyway. */
static void add_tree(struct ag_watch *w, const char *path, int depth)
{
    if (depth > MAX_DEPTH)
        return;
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
    if (wd < 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
            px_log_warn("watch %s: %s", path, strerror(errno));
            w->degraded = true; /* its changes raise no event */
        }
        return;
    }
    struct wdir *known = find_wd(w, wd);
    if (known && strcmp(known->path, path) != 0) {
        /* A folder renamed within the tree keeps its watch: its events
         * must now carry the new path (the loader trusts them). */
        char *p = strdup(path);
        if (p) {
            free(known->path);
            known->path = p;
        } else {
            w->degraded = true;
        }
    }
    if (!known) {
        struct wdir *d = calloc(1, sizeof *d);
        char *p = strdup(path);
        if (!d || !p) {
            free(d);
            free(p);
            return;
        }
        d->wd = wd;
        d->path = p;
        d->next = w->dirs;
        w->dirs = d;
    }
    DIR *dh = opendir(path);
    if (!dh)
        return;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
            continue;
        struct stat st;
        /* lstat: symlinked folders (..data) are not descended; their
         * targets are siblings we visit anyway. */
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode) && !ignored(w, sub, true))
            add_tree(w, sub, depth + 1);
    }
    closedir(dh);
}

static void drop_all(struct ag_watch *w)
{
    while (w->dirs) {
        struct wdir *d = w->dirs;
        w->dirs = d->next;
        inotify_rm_watch(w->fd, d->wd);
        free(d->path);
        free(d);
    }
}

/* Watches one folder outside the tree, without its subfolders. */
static void add_extra(struct ag_watch *w, const char *path)
{
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
    if (wd < 0) {
        if (errno != ENOENT)
            px_log_warn("watch %s: %s", path, strerror(errno));
        return; /* its files are stat'ed on every load anyway */
    }
    if (find_wd(w, wd))
        return; /* already watched, as part of the tree or as another name */
    struct wdir *d = calloc(1, sizeof *d);
    char *p = strdup(path);
    if (!d || !p) {
        free(d);
        free(p);
        inotify_rm_watch(w->fd, wd);
        return;
    }
    *d = (struct wdir){.wd = wd, .path = p, .extra = true, .since = w->epoch, .next = w->dirs};
    w->dirs = d;
}

static bool in_sorted(const char *const *v, size_t n, const char *s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid], s);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Stops watching the extra folders that are not in keep (sorted). */
static void drop_extra(struct ag_watch *w, const char *const *keep, size_t n_keep)
{
    for (struct wdir **pp = &w->dirs; *pp;) {
        struct wdir *d = *pp;
        if (!d->extra || in_sorted(keep, n_keep, d->path)) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        if (!link_wd(w, d->wd))
            inotify_rm_watch(w->fd, d->wd);
        free(d->path);
        free(d);
    }
}

static void add_all_extra(struct ag_watch *w)
{
    for (size_t i = 0; i < w->n_extra; i++)
        add_extra(w, w->extra[i]);
}

static void free_extra_list(struct ag_watch *w)
{
    for (size_t i = 0; i < w->n_extra; i++)
        free(w->extra[i]);
    free(w->extra);
    w->extra = NULL;
    w->n_extra = 0;
}

static bool same_list(char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

void ag_watch_set_extra(struct ag_watch *w, const char *const *dirs, size_t n)
{
    if (same_list(w->extra, w->n_extra, dirs, n))
        return;
    drop_extra(w, dirs, n); /* the ones kept stay watched: no gap */
    free_extra_list(w);
    if (n && (w->extra = calloc(n, sizeof *w->extra)) != NULL)
        for (size_t i = 0; i < n; i++)
            if ((w->extra[w->n_extra] = strdup(dirs[i])) != NULL)
                w->n_extra++;
    add_all_extra(w);
}

/* Forgets the links' watches (keeping a watch a folder of the tree or an
 * extra folder shares). */
static void drop_links(struct ag_watch *w)
{
    for (size_t i = 0; i < w->n_links; i++) {
        struct link_watch *l = &w->links[i];
        if (!find_wd(w, l->wd))
            inotify_rm_watch(w->fd, l->wd); /* twice for a shared parent: EINVAL, harmless */
        free(l->parent);
        free(l->name);
    }
    w->n_links = 0;
}

/* Watches the parent folder of every symbolic link among the components
 * of the watched folder's path (made absolute), for the link's name only:
 * IN_MASK_ADD keeps what a tree or extra watch of the same folder asks. */
static void add_links(struct ag_watch *w)
{
    drop_links(w);
    char abs[PATH_MAX], cwd[PATH_MAX];
    if (w->dir[0] == '/')
        snprintf(abs, sizeof abs, "%s", w->dir);
    else if (getcwd(cwd, sizeof cwd) == NULL ||
             snprintf(abs, sizeof abs, "%s/%s", cwd, w->dir) >= (int)sizeof abs)
        return;
    size_t n = strlen(abs);
    while (n > 1 && abs[n - 1] == '/')
        abs[--n] = '\0';
    for (char *p = abs + 1; *p != '\0' && w->n_links < MAX_LINKS;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        struct stat st;
        if (lstat(abs, &st) == 0 && S_ISLNK(st.st_mode)) {
            char *last = strrchr(abs, '/');
            char *parent = last == abs ? strdup("/") : strndup(abs, (size_t)(last - abs));
            char *name = strdup(last + 1);
            int wd = parent ? inotify_add_watch(w->fd, parent,
                                                IN_CREATE | IN_MOVED_TO | IN_DELETE |
                                                    IN_MOVED_FROM | IN_ONLYDIR | IN_MASK_ADD)
                            : -1;
            if (wd >= 0 && name) {
                w->links[w->n_links++] = (struct link_watch){wd, parent, name};
            } else {
                if (wd < 0 && parent)
                    px_log_warn("watch %s (the folder of the link %s): %s", parent,
                                name ? name : "", strerror(errno));
                free(parent);
                free(name);
            }
        }
        if (slash == NULL)
            break;
        *slash = '/';
        p = slash + 1;
    }
}

/* Whether wd is a link's parent folder. */
static bool link_wd(const struct ag_watch *w, int wd)
{
    for (size_t i = 0; i < w->n_links; i++)
        if (w->links[i].wd == wd)
            return true;
    return false;
}

/* Reads the folder's .albdignore again. Returns true when its bytes (or
 * its presence) changed since the last read: the watches must then
 * follow (an ignored folder is not watched). */
static bool refresh_ignore(struct ag_watch *w)
{
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    if (snprintf(path, sizeof path, "%s/%s", w->dir, RC_IGNORE_FILE) < (int)sizeof path) {
        struct stat st;
        int fd = rc_open_regular(path, &st);
        if (fd >= 0) {
            if (rc_read_all(fd, (size_t)st.st_size, RC_IGNORE_MAX_BYTES, false, &text, &len) != 0)
                text = NULL; /* the load says why; meanwhile nothing is ignored */
            close(fd);
        }
    }
    if (w->ig_text && w->ig_len == len && memcmp(w->ig_text, text ? text : "", len) == 0) {
        free(text);
        return false;
    }
    rc_ignore_free(w->ig);
    w->ig = text ? rc_ignore_parse(text, len) : NULL;
    free(w->ig_text);
    w->ig_text = text ? text : strdup("");
    w->ig_len = len;
    return true;
}

static ssize_t find_writing(struct ag_watch *w, int wd, const char *name)
{
    for (size_t i = 0; i < w->n_writing; i++)
        if (w->writing[i].wd == wd && strcmp(w->writing[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

static void writing_add(struct ag_watch *w, int wd, const char *name)
{
    if (find_writing(w, wd, name) >= 0)
        return;
    if (w->n_writing == w->cap_writing) {
        size_t cap = w->cap_writing ? w->cap_writing * 2 : 8;
        struct open_write *v = realloc(w->writing, cap * sizeof *v);
        if (!v)
            return; /* then the file just does not delay the reload */
        w->writing = v;
        w->cap_writing = cap;
    }
    char *n = strdup(name);
    if (!n)
        return;
    if (w->n_writing == 0)
        w->writing_since = uv_now(w->loop);
    w->writing[w->n_writing++] = (struct open_write){wd, n};
}

static void writing_remove(struct ag_watch *w, int wd, const char *name)
{
    ssize_t i = find_writing(w, wd, name);
    if (i < 0)
        return;
    free(w->writing[i].name);
    w->writing[i] = w->writing[--w->n_writing];
}

static void writing_clear(struct ag_watch *w)
{
    while (w->n_writing)
        free(w->writing[--w->n_writing].name);
}

/* Arms the timer: the debounce after the last change (COMPLETE_SETTLE_MS
 * when it was a rename into place or a delete), or — while a file is still
 * open for writing — a re-check, bounded by OPEN_WRITE_MAX_MS. */
static void arm(struct ag_watch *w)
{
    uint64_t delay = w->debounce_ms;
    if (w->complete && w->n_writing == 0 && delay > COMPLETE_SETTLE_MS)
        delay = COMPLETE_SETTLE_MS;
    if (w->n_writing) {
        uint64_t waited = uv_now(w->loop) - w->writing_since;
        uint64_t left = waited < OPEN_WRITE_MAX_MS ? OPEN_WRITE_MAX_MS - waited : 0;
        if (left > delay)
            delay = left;
    }
    uv_timer_start(&w->debounce, on_debounce, delay, 0);
}

static void on_debounce(uv_timer_t *t)
{
    struct ag_watch *w = t->data;
    /* libuv runs due timers before it polls: events may be queued that
     * on_poll has not read yet — a change after the timer was armed, or the
     * truncation of an in-place save whose write has not come. Read them
     * first: a change restarts the debounce, a writer is waited for. */
    if (drain_events(w) > 0) {
        arm(w);
        return;
    }
    if (w->n_writing) {
        if (uv_now(w->loop) - w->writing_since < OPEN_WRITE_MAX_MS) {
            arm(w);
            return;
        }
        writing_clear(w); /* a writer that never closes: read what is there */
    }
    w->manifest_gone = false;
    w->complete = false;
    w->cb(w, w->arg);
}

/* Watches everything again: the tree (as .albdignore now says), the extra
 * folders and the links' parents. The next load checks every file. */
static void rescan(struct ag_watch *w)
{
    drop_all(w);
    writing_clear(w);
    add_tree(w, w->dir, 0);
    add_all_extra(w);
    add_links(w);
    ag_changes_clear(&w->seen);
    w->seen.all = true;
    w->seen.tree = true;
    w->seen.dirs = true;
}

/* What an event in a link's parent folder means: 1 the link was replaced
 * or removed; -1 another name in a folder watched only for links (not
 * relevant); 0 not a link parent's event. */
static int link_event(struct ag_watch *w, const struct inotify_event *ev)
{
    if (!link_wd(w, ev->wd))
        return 0;
    for (size_t i = 0; ev->len && i < w->n_links; i++)
        if (w->links[i].wd == ev->wd && strcmp(w->links[i].name, ev->name) == 0)
            return 1;
    return find_wd(w, ev->wd) ? 0 : -1;
}

/* The path of what ev names, relative to the watched folder (malloc'd),
 * or NULL when the whole tree must be taken as changed. */
static char *event_rel(struct ag_watch *w, const struct inotify_event *ev)
{
    const struct wdir *d = find_wd(w, ev->wd);
    if (d == NULL || strncmp(d->path, w->dir, strlen(w->dir)) != 0)
        return NULL;
    const char *base = d->path + strlen(w->dir);
    while (*base == '/')
        base++;
    char *rel = NULL;
    if (ev->len == 0) /* the folder itself: chmod, deleted, moved */
        return *base ? strdup(base) : NULL;
    if (asprintf(&rel, "%s%s%s", base, *base ? "/" : "", ev->name) < 0)
        return NULL;
    return rel;
}

/* Notes what a relevant event says of the change it belongs to: a rename
 * into place leaves nothing half-written, unless a manifest went away in
 * the same burst (an editor's save: moved aside or deleted, the new file
 * comes next; a temporary file renamed into place is not a manifest going
 * away); any other change (a file created, written, closed, its mode
 * changed) may be the start of more. The watch's own removal and an event
 * on a watched folder itself say nothing either way. */
static void note_event(struct ag_watch *w, const struct inotify_event *ev)
{
    if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
        return;
    if ((ev->mask & (IN_MOVED_FROM | IN_DELETE)) && ev->len && rc_is_manifest_name(ev->name))
        w->manifest_gone = true;
    w->complete = (ev->mask & IN_MOVED_TO) != 0 && !w->manifest_gone;
}

/* Reads every queued event; returns how many were relevant. */
static int drain_events(struct ag_watch *w)
{
    int relevant = 0;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                relevant++;
                w->complete = false;
                px_log_warn("watch: inotify queue overflowed; rescanning %s", w->dir);
                refresh_ignore(w);
                rescan(w);
                continue;
            }
            if (!(ev->mask & IN_IGNORED)) {
                int lk = link_event(w, ev);
                if (lk < 0)
                    continue; /* a sibling of the link: nothing of ours */
                if (lk > 0) {
                    /* The load that follows resolves the folder again
                     * (ag_watch_take_changes) and, when it moved, watches
                     * the new tree and checks every file. */
                    relevant++;
                    note_event(w, ev);
                    w->relinked = true;
                    continue;
                }
            }
            char *rel = NULL;
            const struct wdir *ed = find_wd(w, ev->wd);
            if (!(ev->mask & IN_IGNORED) && !(ed && ed->extra)) {
                rel = event_rel(w, ev);
                if (rel && strcmp(rel, RC_IGNORE_FILE) == 0) {
                    free(rel);
                    relevant++;
                    note_event(w, ev);
                    if (refresh_ignore(w)) {
                        px_log_info("watch: %s/%s changed; watching the tree again", w->dir,
                                    RC_IGNORE_FILE);
                        rescan(w);
                    }
                    continue;
                }
                /* What .albdignore ignores reconciles nothing. */
                if (rel && ignored_rel(w, rel, (ev->mask & IN_ISDIR) || ev->len == 0)) {
                    free(rel);
                    continue;
                }
            }
            relevant++;
            note_event(w, ev);
            if (ev->mask & IN_IGNORED) {
                struct wdir **pp = &w->dirs;
                while (*pp && (*pp)->wd != ev->wd)
                    pp = &(*pp)->next;
                if (*pp) {
                    struct wdir *d = *pp;
                    *pp = d->next;
                    free(d->path);
                    free(d);
                }
                continue;
            }
            if (ed && ed->extra) {
                /* A certificate folder outside the tree: a reconcile, and
                 * the file's absolute path (the folder's for an event on
                 * the folder itself) among the changes, so that the load
                 * trusts the files no event names (ag_watch_trusted_extra). */
                char *abs = NULL;
                if (ev->len == 0)
                    abs = strdup(ed->path);
                else if (asprintf(&abs, "%s/%s", ed->path, ev->name) < 0)
                    abs = NULL;
                changes_add(&w->seen, abs); /* NULL: all */
                if (ev->len && (ev->mask & IN_MODIFY))
                    writing_add(w, ev->wd, ev->name);
                else if (ev->len && (ev->mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM)))
                    writing_remove(w, ev->wd, ev->name);
                continue;
            }
            changes_add(&w->seen, rel);
            /* A name appeared or went, or a folder's mode changed (it may
             * have become unreadable): the loader walks the tree again. */
            if ((ev->mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                             IN_MOVE_SELF)) ||
                ((ev->mask & IN_ATTRIB) && ((ev->mask & IN_ISDIR) || ev->len == 0))) {
                w->seen.tree = true;
                /* A file's name alone lets the loader patch its list of
                 * manifest files; a folder's needs the walk. */
                if ((ev->mask & (IN_ISDIR | IN_DELETE_SELF | IN_MOVE_SELF)) || ev->len == 0)
                    w->seen.dirs = true;
            }
            if (ev->len && !(ev->mask & IN_ISDIR)) {
                if (ev->mask & IN_MODIFY)
                    writing_add(w, ev->wd, ev->name);
                else if (ev->mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM))
                    writing_remove(w, ev->wd, ev->name);
            }
            if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && (ev->mask & IN_ISDIR) && ev->len) {
                struct wdir *d = find_wd(w, ev->wd);
                char sub[PATH_MAX];
                if (d && snprintf(sub, sizeof sub, "%s/%s", d->path, ev->name) < (int)sizeof sub)
                    add_tree(w, sub, 1);
            }
        }
    }
    if (relevant)
        w->changes++;
    return relevant;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct ag_watch *w = p->data;
    if (status < 0) {
        px_log_error("watch: %s", uv_strerror(status));
        return;
    }
    if (drain_events(w) > 0)
        arm(w);
}

int ag_watch_start(uv_loop_t *loop, const char *dir, unsigned debounce_ms, ag_watch_cb cb,
                   void *arg, struct ag_watch **out)
{
    struct ag_watch *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->dir = strdup(dir);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (!w->dir || w->fd < 0) {
        int e = w->fd < 0 ? errno : ENOMEM;
        if (w->fd >= 0)
            close(w->fd);
        free(w->dir);
        free(w);
        return -e;
    }
    w->loop = loop;
    w->real = realpath(dir, NULL);
    w->debounce_ms = debounce_ms;
    w->cb = cb;
    w->arg = arg;
    refresh_ignore(w);
    add_tree(w, dir, 0);
    if (!w->dirs) {
        int e = errno ? errno : ENOENT;
        close(w->fd);
        free(w->real);
        free(w->dir);
        rc_ignore_free(w->ig);
        free(w->ig_text);
        free(w);
        return -e;
    }
    add_links(w);
    uv_timer_init(loop, &w->debounce);
    w->debounce.data = w;
    uv_poll_init(loop, &w->poll, w->fd);
    w->poll.data = w;
    uv_poll_start(&w->poll, UV_READABLE, on_poll);
    *out = w;
    return 0;
}

void ag_watch_take_changes(struct ag_watch *w, struct ag_changes *into)
{
    w->epoch++;
    if (drain_events(w) > 0)
        arm(w);
    /* The folder is a link that now points elsewhere (a release swap):
     * what is watched is the old tree. Watch the new one; this load checks
     * every file. */
    char *real = realpath(w->dir, NULL);
    bool relinked = w->relinked;
    w->relinked = false;
    if (real && w->real && strcmp(real, w->real) != 0) {
        px_log_info("watch: %s now resolves to %s; watching that tree", w->dir, real);
        refresh_ignore(w);
        rescan(w);
    } else if (relinked) {
        add_links(w); /* the same target again: the links' watches may have moved */
    }
    /* An ignore file that changed with no event naming it (a ConfigMap's
     * "..data" swap, or a link to it re-pointed). */
    if (refresh_ignore(w))
        rescan(w);
    if (real) {
        free(w->real);
        w->real = real;
    }
    if (w->degraded)
        w->seen.all = true;
    ag_changes_merge(into, &w->seen);
}

const char *ag_watch_root(const struct ag_watch *w)
{
    return w->real;
}

bool ag_watch_writing(const struct ag_watch *w)
{
    return w->n_writing > 0;
}

uint64_t ag_watch_epoch(const struct ag_watch *w)
{
    return w->epoch;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The extra folders whose watch began in [from, to), their paths sorted;
 * NULL (and *n 0) when there are none or memory runs out. */
static char **extra_since(const struct ag_watch *w, uint64_t from, uint64_t to, size_t *n)
{
    *n = 0;
    size_t cnt = 0;
    for (const struct wdir *d = w->dirs; d; d = d->next)
        cnt += d->extra && d->since >= from && d->since < to;
    char **v = cnt ? calloc(cnt, sizeof *v) : NULL;
    if (v == NULL)
        return NULL;
    for (const struct wdir *d = w->dirs; d; d = d->next)
        if (d->extra && d->since >= from && d->since < to) {
            if ((v[*n] = strdup(d->path)) == NULL) {
                ag_watch_free_list(v, *n);
                *n = 0;
                return NULL;
            }
            (*n)++;
        }
    qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

char **ag_watch_trusted_extra(struct ag_watch *w, uint64_t before, size_t *n)
{
    /* No drain here: an event read now would be in neither this load's
     * changes nor past its mark (ag_watch_mark). */
    return extra_since(w, 0, before, n);
}

char **ag_watch_fresh_extra(struct ag_watch *w, size_t *n)
{
    return extra_since(w, w->epoch, UINT64_MAX, n);
}

void ag_watch_vouch_extra(struct ag_watch *w, char *const *dirs, const bool *ok, size_t n)
{
    for (struct wdir *d = w->dirs; d; d = d->next) {
        if (!d->extra)
            continue;
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(dirs[mid], d->path);
            if (c == 0) {
                if (ok[mid])
                    d->since = 0; /* before any load */
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
}

void ag_watch_free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

uint64_t ag_watch_mark(struct ag_watch *w)
{
    return w->changes;
}

bool ag_watch_changed_since(struct ag_watch *w, uint64_t mark)
{
    if (drain_events(w) > 0)
        arm(w);
    return w->changes != mark;
}

static void on_closed(uv_handle_t *h)
{
    struct ag_watch *w = h->data;
    if (--w->closing > 0)
        return;
    drop_all(w);
    writing_clear(w);
    free(w->writing);
    ag_changes_clear(&w->seen);
    free(w->seen.v);
    free(w->real);
    free_extra_list(w);
    drop_links(w);
    rc_ignore_free(w->ig);
    free(w->ig_text);
    close(w->fd);
    free(w->dir);
    free(w);
}

void ag_watch_close(struct ag_watch *w)
{
    if (!w)
        return;
    w->closing = 2;
    uv_close((uv_handle_t *)&w->poll, on_closed);
    uv_close((uv_handle_t *)&w->debounce, on_closed);
}
