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

#include "proxy/log.h"

static void on_debounce(uv_timer_t *t);

enum {
    WATCH_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                 IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR,
    MAX_DEPTH = 32,
};

/* The directories watched, by watch descriptor (for adding subfolders). */
struct wdir {
    int wd;
    char *path;
    struct wdir *next;
};

/* A file written to (IN_MODIFY) whose writer has not closed it yet
 * (IN_CLOSE_WRITE): its content may be half-written. */
struct open_write {
    int wd;
    char *name;
};

/* How long a file may stay open for writing before the tree is read
 * anyway (a process that keeps a manifest open must not block reloads). */
enum { OPEN_WRITE_MAX_MS = 2000 };

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
    struct wdir *dirs;
    struct open_write *writing;
    size_t n_writing, cap_writing;
    uint64_t writing_since; /* uv_now when writing became non-empty */
    int closing;            /* handles still to close */
};

static struct wdir *find_wd(struct ag_watch *w, int wd)
{
    for (struct wdir *d = w->dirs; d; d = d->next)
        if (d->wd == wd)
            return d;
    return NULL;
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
        if (errno != ENOENT && errno != ENOTDIR)
            px_log_warn("watch %s: %s", path, strerror(errno));
        return;
    }
    if (!find_wd(w, wd)) {
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
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
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

/* Arms the timer: the debounce after the last change, or — while a file
 * is still open for writing — a re-check, bounded by OPEN_WRITE_MAX_MS. */
static void arm(struct ag_watch *w)
{
    uint64_t delay = w->debounce_ms;
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
    if (w->n_writing) {
        if (uv_now(w->loop) - w->writing_since < OPEN_WRITE_MAX_MS) {
            arm(w);
            return;
        }
        writing_clear(w); /* a writer that never closes: read what is there */
    }
    w->cb(w, w->arg);
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
            relevant++;
            if (ev->mask & IN_Q_OVERFLOW) {
                px_log_warn("watch: inotify queue overflowed; rescanning %s", w->dir);
                writing_clear(w);
                drop_all(w);
                add_tree(w, w->dir, 0);
                continue;
            }
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
    w->debounce_ms = debounce_ms;
    w->cb = cb;
    w->arg = arg;
    add_tree(w, dir, 0);
    if (!w->dirs) {
        int e = errno ? errno : ENOENT;
        close(w->fd);
        free(w->dir);
        free(w);
        return -e;
    }
    uv_timer_init(loop, &w->debounce);
    w->debounce.data = w;
    uv_poll_init(loop, &w->poll, w->fd);
    w->poll.data = w;
    uv_poll_start(&w->poll, UV_READABLE, on_poll);
    *out = w;
    return 0;
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
