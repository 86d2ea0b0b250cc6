/* `albd run`: the agent thread's loop. */
#include "agent/agent.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "agent/admin.h"
#include "agent/certdirs.h"
#include "agent/events.h"
#include "agent/certsvc.h"
#include "agent/notify.h"
#include "agent/watch.h"
#include "common/log.h"
#include "proxy/alog.h"
#include "proxy/px.h"
#include "proxy/tls_keys.h"
#include "reconciler/certstore.h"
#include "reconciler/load.h"
#include "reconciler/rc.h"
#include "reconciler/source.h"

/* Tells systemd (when it started albd with Type=notify); see notify.h. */
static void notify(const char *msg)
{
    int rc = ag_notify(msg);
    if (rc < 0)
        px_log_warn("NOTIFY_SOCKET: %s", strerror(-rc));
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Equal manifest bytes can still mean a new configuration: the certificate
 * and key files they reference may have been rewritten (a renewal). Each
 * certificate's digest covers its PEM bytes; the arrays are sorted by
 * name. */
static bool same_config(const struct rc_model *a, const struct rc_model *b)
{
    if (strcmp(a->digest, b->digest) != 0 || a->n_certificates != b->n_certificates)
        return false;
    for (size_t i = 0; i < a->n_certificates; i++)
        if (a->certificates[i] != b->certificates[i] &&
            strcmp(a->certificates[i]->meta.digest, b->certificates[i]->meta.digest) != 0)
            return false;
    return true;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What the load's ready call (rc_load_opts.ready) did with the model. */
struct ready_state {
    struct ag_agent *a;
    uint64_t mark; /* ag_watch_mark() before the load */
    double t0;     /* when the reconcile began */
    bool changed;  /* manifests changed while read: not applied */
    bool same;     /* the running configuration: nothing to apply */
    int applied;   /* 1 applied, -1 refused (aerr), 0 not tried */
    struct px_apply_error *aerr;
};

/* Applies the new model as soon as the load has built it, before the load
 * keeps its records for the next one and works out the status (a few ms
 * at 10,000 resources): the change serves that much sooner. */
static void on_model_ready(void *arg, struct rc_model *m)
{
    struct ready_state *r = arg;
    struct ag_agent *a = r->a;
    if (a->watch && ag_watch_changed_since(a->watch, r->mark)) {
        r->changed = true;
        return;
    }
    if (a->running && same_config(a->running, m)) {
        r->same = true;
        return;
    }
    /* From here on this load's problems and status replace these when
     * ag_reconcile ends, applied or not (a refused apply loads again and
     * ends with that load's), and nothing reads them before: the admin
     * endpoint runs on this thread. Freed before the apply, their memory
     * (10,000 expiry warnings and status entries at 10,000 short-lived
     * certificates, ~2 MiB) is out of the resident set, or free for the
     * apply's new listener and SNI table (~1.2 MiB at 10,000 names), by
     * the time those are built: after the apply, it was the reload's
     * peak. */
    rc_errs_cleanup(&a->last_errs);
    rc_status_cleanup(&a->last_status);
    r->applied = px_runtime_apply(a->rt, m, r->aerr) == 0 ? 1 : -1;
    if (r->applied > 0)
        a->last_apply_seconds = now_seconds() - r->t0;
}

/* The loader's view of a->pending: NULL when not known. trusted: the
 * certificate folders outside the tree watched since before the running
 * model's load (ag_watch_trusted_extra). */
static const struct rc_changes *pending_view(struct ag_agent *a, struct rc_changes *view,
                                             char *const *trusted, size_t n_trusted)
{
    if (a->pending.all || a->watch == NULL || a->running == NULL)
        return NULL;
    if (a->pending.n > 1)
        qsort(a->pending.v, a->pending.n, sizeof(*a->pending.v), str_cmp);
    *view = (struct rc_changes){
        (const char *const *)a->pending.v, a->pending.n, a->pending.tree,
        (const char *const *)trusted,      n_trusted,    a->pending.tree && !a->pending.dirs};
    return view;
}

/* The certificate folders the watcher began watching just now were read
 * before their watch began: checks (one stat each) that every file the
 * running model read there that a load may trust (settled, watchable) is
 * still what was read, and if so has the watcher vouch for the folder at
 * once — so the first change after a start (one certificate added) needs
 * no stat of the 20,000 files out there. A folder with a file changed
 * meanwhile stays unvouched until a load has read it again. */
static void vouch_fresh_cert_folders(struct ag_agent *a)
{
    size_t n = 0;
    char **fresh = ag_watch_fresh_extra(a->watch, &n);
    const struct rc_sources *src = rc_model_sources(a->running);
    bool *ok = n ? malloc(n) : NULL;
    if (fresh == NULL || src == NULL || ok == NULL) {
        free(ok);
        ag_watch_free_list(fresh, n);
        return;
    }
    ag_certdirs_check_fresh(&src->kept, fresh, ok, n);
    ag_watch_vouch_extra(a->watch, fresh, ok, n);
    free(ok);
    ag_watch_free_list(fresh, n);
}

/* The watcher also watches the folders of certificate and key files that
 * live outside the manifest folder (and of link targets out there), so that
 * a renewal there reconciles without SIGHUP. Kept incrementally
 * (agent/certdirs.h): only the certificates that are new or changed are
 * looked at, and the watcher hears of the folders only when they change. */
static void watch_cert_folders(struct ag_agent *a)
{
    if (a->watch == NULL || a->running == NULL)
        return;
    if (a->cert_dirs == NULL && (a->cert_dirs = ag_certdirs_new()) == NULL)
        return;
    if (!ag_certdirs_update(a->cert_dirs, a->running, ag_watch_root(a->watch)))
        return;
    size_t n;
    const char *const *v = ag_certdirs_list(a->cert_dirs, &n);
    ag_watch_set_extra(a->watch, v, n);
    vouch_fresh_cert_folders(a);
}

/* m becomes the running model: the changes so far are in it. */
static void adopt(struct ag_agent *a, struct rc_model *m, uint64_t epoch)
{
    rc_model_unref(a->running);
    a->running = m;
    a->running_epoch = epoch;
    ag_changes_clear(&a->pending);
    watch_cert_folders(a);
    ag_certsvc_sync(a->certsvc, m);
}

static void log_errs(const struct rc_errs *errs)
{
    char line[1024];
    for (size_t i = 0; i < errs->n; i++) {
        if (ag_events_is_expiry_warning(&errs->v[i]))
            continue; /* once a day per certificate, not every reconcile (agent/events.c) */
        rc_err_format(&errs->v[i], line, sizeof line);
        if (errs->v[i].severity == RC_ERROR)
            px_log_error("%s", line);
        else if (errs->v[i].severity == RC_WARNING)
            px_log_warn("%s", line);
        else
            px_log_info("%s", line);
    }
}

static void on_retry_timer(uv_timer_t *t)
{
    struct ag_agent *a = t->data;
    if (a->stopping)
        return;
    px_log_info("retrying the listeners that could not be applied (next try in at most %u s)",
                (a->retry_ms * 2 > 60000 ? 60000 : a->retry_ms * 2) / 1000);
    a->pending.all = true;
    ag_reconcile(a);
}

/* A listener the proxy could not serve (contained) is tried again by
 * itself, not only at the next change or SIGHUP: after 1 s, then twice as
 * long each time, at most 60 s apart; the delay resets once all serve. */
static void schedule_retry(struct ag_agent *a, bool failing)
{
    if (a->stopping || uv_is_closing((uv_handle_t *)&a->retry_timer))
        return;
    if (!failing) {
        a->retry_ms = 0;
        uv_timer_stop(&a->retry_timer);
        return;
    }
    a->retry_ms = a->retry_ms ? (a->retry_ms * 2 > 60000 ? 60000 : a->retry_ms * 2) : 1000;
    uv_timer_start(&a->retry_timer, on_retry_timer, a->retry_ms, 0);
}

/* --strict and a load that failed because listeners wait for service
 * certificates never fetched: only a fetch can end that, so the service
 * certificates a contained load finds are fetched anyway (the result is
 * used for nothing else). */
static void fetch_pending_strict(struct ag_agent *a, const struct rc_errs *errs)
{
    bool pending = false;
    for (size_t i = 0; i < errs->n && !pending; i++)
        pending = errs->v[i].msg && strstr(errs->v[i].msg, RC_PENDING_PREFIX) != NULL;
    if (!pending)
        return;
    struct rc_load_opts o = {.now = time(NULL),
                             .prev = a->running,
                             .cert_cache_dir = a->opt.cert_cache_dir,
                             .cert_pending_is_error = true};
    struct rc_model *m = NULL;
    struct rc_errs e;
    rc_errs_init(&e);
    if (rc_load_dir_ex(a->opt.manifest_dir, &o, &m, &e, NULL) >= 0 && m)
        ag_certsvc_sync(a->certsvc, m);
    rc_model_unref(m);
    rc_errs_cleanup(&e);
}

/* Loads the manifests (with the running model as the source of last good
 * versions), then applies. A listener the proxy cannot serve (its port will
 * not bind, OpenSSL refuses its certificate) is contained like an invalid
 * resource: loaded again as invalid — first keeping its last good version,
 * then without it — while everything else applies. --strict applies all or
 * nothing. */
int ag_reconcile(struct ag_agent *a)
{
    double t0 = now_seconds();
    enum { MAX_CONTAINED = 16 };
    struct rc_invalid invalid[MAX_CONTAINED];
    char reasons[MAX_CONTAINED][512];
    char names[MAX_CONTAINED][128];
    size_t n_invalid = 0;
    struct rc_errs errs;
    struct rc_status st;
    rc_errs_init(&errs);
    rc_status_init(&st);
    struct px_apply_error aerr = {{0}, {0}, false};
    int result = -1;
    struct rc_changes view;
    /* The running model an applied load replaced: what changed is logged
     * at the end (see there). */
    struct rc_model *replaced = NULL;
    bool log_changes = false;
    /* Expiry warnings the load left for later (load.h), about the
     * certificates of the model it returned: reported at the end when
     * that model is kept (late_kept). */
    struct rc_late_expiries late = {.n = 0};
    bool late_kept = false;
    uint64_t epoch = 0;
    size_t n_trusted = 0;
    char **trusted = NULL;
    if (a->watch) {
        ag_watch_take_changes(a->watch, &a->pending);
        if (ag_watch_writing(a->watch)) {
            /* An in-place save is under way (SIGHUP, a retry or a service
             * certificate came in the middle of it): its file may be empty
             * now, which would read as its resources deleted. The watcher
             * calls back once the writer closes it. */
            px_log_debug("reconcile: a manifest is being written; reading it once it is closed");
            rc_errs_cleanup(&errs);
            rc_status_cleanup(&st);
            return 1;
        }
        epoch = ag_watch_epoch(a->watch);
        if (a->running)
            trusted = ag_watch_trusted_extra(a->watch, a->running_epoch, &n_trusted);
    }

    for (;;) {
        struct rc_load_opts o = {.now = time(NULL),
                                 .prev = a->running,
                                 .strict = a->opt.strict,
                                 .refuse_foreign = a->opt.refuse_foreign,
                                 .invalid = invalid,
                                 .n_invalid = n_invalid,
                                 .changes = pending_view(a, &view, trusted, n_trusted),
                                 .cert_cache_dir = a->opt.cert_cache_dir,
                                 .cert_pending_is_error = true};
        struct rc_model *m = NULL;
        rc_errs_cleanup(&errs);
        rc_status_cleanup(&st);
        rc_late_expiries_drop(&late); /* (an apply refused: loaded again) */
        uint64_t mark = a->watch ? ag_watch_mark(a->watch) : 0;
        struct ready_state ready = {.a = a, .mark = mark, .t0 = t0, .aerr = &aerr};
        o.ready = on_model_ready;
        o.ready_arg = &ready;
        o.late_expiry = &late;
        int rc = rc_load_dir_ex(a->opt.manifest_dir, &o, &m, &errs, &st);
        /* Applied, it serves: changes since are the next load's. */
        if (ready.applied == 0 &&
            (ready.changed || (a->watch && ag_watch_changed_since(a->watch, mark)))) {
            /* Files changed while they were read: this may be a half-written
             * save. Read them again once the writes are quiet. */
            px_log_debug("reconcile: manifests changed while being read; reading again");
            rc_model_unref(m);
            rc_errs_cleanup(&errs);
            rc_status_cleanup(&st);
            rc_late_expiries_drop(&late);
            ag_watch_free_list(trusted, n_trusted);
            return 1;
        }
        if (rc < 0 || !m) {
            rc_model_unref(m);
            snprintf(a->last_error, sizeof a->last_error,
                     "%zu error(s) in the manifests; the running configuration is unchanged",
                     rc_errs_count_errors(&errs));
            if (a->opt.strict)
                fetch_pending_strict(a, &errs);
            break;
        }
        if (ready.same) {
            /* Nothing to publish. m describes the same configuration with
             * fresher file records; the snapshot holds its own model. */
            adopt(a, m, epoch);
            late_kept = true;
            result = rc > 0 ? 1 : 0;
            break;
        }
        if (ready.applied > 0) {
            struct rc_model *before = a->running ? rc_model_ref(a->running) : NULL;
            adopt(a, m, epoch);
            a->last_applied = time(NULL);
            memcpy(a->manifest_digest, m->digest, sizeof a->manifest_digest);
            px_log_info("applied generation %llu (%zu listeners, %zu server groups, "
                        "%zu certificates%s) in %.1f ms",
                        (unsigned long long)px_runtime_generation(a->rt), m->n_listeners,
                        m->n_groups, m->n_certificates,
                        rc > 0 ? "; invalid resources contained" : "",
                        a->last_apply_seconds * 1000);
            replaced = before;
            log_changes = late_kept = true;
            ag_events_cert_expiry(m, time(NULL));
            result = rc > 0 ? 1 : 0;
            break;
        }
        rc_model_unref(m);
        px_log_error("apply: %s", aerr.msg);
        if (aerr.port_shared && !a->running) {
            /* A second albd started on the ports of a running one: refuse to
             * start rather than take half of its connections. */
            a->refused = true;
            snprintf(a->last_error, sizeof a->last_error, "%s", aerr.msg);
            break;
        }
        if (a->opt.strict || !aerr.listener[0]) {
            snprintf(a->last_error, sizeof a->last_error, "%s", aerr.msg);
            break;
        }
        /* Contain the listener: first with its last good version, then
         * without it if that fails too. */
        size_t i = 0;
        while (i < n_invalid && strcmp(invalid[i].name, aerr.listener) != 0)
            i++;
        if (i < n_invalid && invalid[i].absent) {
            snprintf(a->last_error, sizeof a->last_error, "%s", aerr.msg);
            break; /* already dropped: nothing more to contain */
        }
        if (i == n_invalid) {
            if (n_invalid == MAX_CONTAINED) {
                snprintf(a->last_error, sizeof a->last_error, "%s", aerr.msg);
                break;
            }
            n_invalid++;
            snprintf(names[i], sizeof names[i], "%s", aerr.listener);
            invalid[i] = (struct rc_invalid){.kind = "Listener", .name = names[i]};
        } else {
            invalid[i].absent = true;
        }
        snprintf(reasons[i], sizeof reasons[i], "%s", aerr.msg);
        invalid[i].reason = reasons[i];
    }

    ag_watch_free_list(trusted, n_trusted);
    schedule_retry(a, n_invalid > 0);
    /* Parsed certificates that no TLS context serves any more, and those
     * this load parsed that none took (reconciler/certstore.h). */
    double t_trim = now_seconds();
    /* A load of 10,000 certificates frees hundreds of MiB of scratch (YAML
     * documents, the previous model) in small pieces: give the pages back
     * rather than hold them until the next load. After the apply: it does
     * not delay the new configuration.
     *
     * What changed is worked out (agent/events.c: both versions of every
     * changed resource as JSON, ~1.6 MiB for a listener of 10,000 names)
     * only once the load's scratch is given back: malloc picks its free
     * chunks by size, not by whether their pages are resident, so done
     * before, that JSON lands in pages given back after the last load and
     * adds to the reload's peak (measured: +1.5 MiB of VmHWM on adding one
     * certificate to 10,000) instead of reusing the scratch's. The
     * replaced model is kept until then, so the sweep comes after. So are
     * the expiry warnings of the certificates the load copied (~2 MiB of
     * strings at 10,000 short-lived ones): the load leaves them here. */
    if (log_changes || (late_kept && late.n > 0))
        malloc_trim(0);
    if (log_changes)
        ag_events_changes(replaced, a->running); /* agent/events.c */
    rc_model_unref(replaced);
    size_t swept = rc_certstore_sweep();
    if (late_kept)
        rc_late_expiries_report(&late, &errs);
    rc_late_expiries_drop(&late); /* (the model was not kept) */
    malloc_trim(0);
    struct rc_certstore_stats cs;
    rc_certstore_stats(&cs);
    px_log_debug("certificates: %zu parsed in memory, %zu freed now, %zu parsed since start; "
                 "sweep and trim %.1f ms",
                 cs.entries, swept, cs.parsed, (now_seconds() - t_trim) * 1000);
    rc_errs_sort(&errs);
    log_errs(&errs);
    rc_errs_cleanup(&a->last_errs);
    a->last_errs = errs;
    rc_status_cleanup(&a->last_status);
    a->last_status = st;
    a->listeners_pending = 0;
    for (size_t i = 0; i < st.n; i++)
        a->listeners_pending += !strcmp(st.v[i].kind, "Listener") &&
                                st.v[i].state != RC_RES_READY && st.v[i].message &&
                                strstr(st.v[i].message, RC_PENDING_PREFIX) != NULL;
    ag_status_observe(a);
    if (result < 0) {
        a->reconciles_failed++;
        px_log_error("reconcile: %s", a->last_error);
    } else if (result == 0 && n_invalid == 0 && rc_errs_count_errors(&a->last_errs) == 0) {
        a->reconciles_ok++;
        a->last_error[0] = '\0';
    } else {
        a->reconciles_partial++;
        snprintf(a->last_error, sizeof a->last_error,
                 "some resources are invalid; they keep their last good version or stay "
                 "absent, everything else applied");
    }
    if (a->running && !a->ready_notified) {
        char msg[128];
        snprintf(msg, sizeof msg, "READY=1\nSTATUS=serving generation %llu",
                 (unsigned long long)px_runtime_generation(a->rt));
        notify(msg);
        a->ready_notified = true;
    }
    return result < 0 ? -1 : 0;
}

static void on_sig_poll_closed(uv_handle_t *h)
{
    struct ag_agent *a = h->data;
    close(a->sig_fd);
    a->sig_fd = -1;
}

/* Closes the agent's handles so that its loop ends. */
static void close_handles(struct ag_agent *a)
{
    a->stopping = true;
    uv_close((uv_handle_t *)&a->stop_timer, NULL);
    /* The signals stay blocked: one repeated from now on (systemd, a
     * supervisor, a second Ctrl-C) stays pending and the process still
     * frees and exits with its status. */
    uv_close((uv_handle_t *)&a->sig_poll, on_sig_poll_closed);
    uv_close((uv_handle_t *)&a->ticket_timer, NULL);
    uv_close((uv_handle_t *)&a->retry_timer, NULL);
    ag_admin_close(a->admin);
    a->admin = NULL;
    ag_admin_close(a->probe);
    a->probe = NULL;
    ag_watch_close(a->watch);
    a->watch = NULL;
    px_runtime_close_dns(a->rt);
    uv_close((uv_handle_t *)&a->certsvc_timer, NULL);
    ag_certsvc_close(a->certsvc);
    a->certsvc = NULL;
}

static void on_drain_poll(uv_timer_t *t)
{
    struct ag_agent *a = t->data;
    if (px_runtime_drained(a->rt))
        close_handles(a);
}

/* The end of the grace: listeners close, in-flight requests drain. The
 * admin and probe endpoints keep answering (/readyz 503) until the workers
 * are done. */
static void begin_drain(struct ag_agent *a)
{
    a->workers_draining = true;
    px_log_info("closing the listeners; draining (at most %u ms)", a->opt.drain_ms);
    px_runtime_begin_stop(a->rt);
    uv_timer_start(&a->stop_timer, on_drain_poll, 0, 20);
}

static void on_grace_over(uv_timer_t *t)
{
    begin_drain(t->data);
}

/* SIGTERM/SIGINT: readiness fails at once (/readyz 503, systemd told
 * STOPPING=1), the listeners keep accepting for --shutdown-grace — the time
 * a Kubernetes Service or an external load balancer needs to stop sending
 * here — then close and in-flight requests drain. A second signal during
 * the grace cuts it short. */
static void on_stop_signal(struct ag_agent *a, int signum)
{
    const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    if (a->stopping) {
        if (!a->workers_draining) {
            px_log_info("%s again: ending the grace now", name);
            uv_timer_stop(&a->stop_timer);
            begin_drain(a);
        }
        return;
    }
    a->stopping = true;
    notify("STOPPING=1\nSTATUS=draining");
    ag_watch_close(a->watch);
    a->watch = NULL;
    if (a->opt.grace_ms == 0) {
        px_log_info("%s: stopping", name);
        begin_drain(a);
        return;
    }
    px_log_info("%s: /readyz answers 503; still accepting for %u ms", name, a->opt.grace_ms);
    uv_timer_start(&a->stop_timer, on_grace_over, a->opt.grace_ms, 0);
}

static void on_manifests_changed(struct ag_watch *w, void *arg)
{
    struct ag_agent *a = arg;
    if (!a->stopping)
        ag_reconcile(a);
}

static void on_certsvc_timer(uv_timer_t *t)
{
    struct ag_agent *a = t->data;
    if (!a->stopping)
        ag_reconcile(a);
}

/* A new certificate version is in the cache: reconcile after a short quiet
 * time, so that many certificates fetched together apply at once. */
static void on_cert_cached(void *arg)
{
    struct ag_agent *a = arg;
    if (!a->stopping && !uv_is_active((uv_handle_t *)&a->certsvc_timer))
        uv_timer_start(&a->certsvc_timer, on_certsvc_timer, 20, 0);
}

static void on_ticket_timer(uv_timer_t *t)
{
    struct ag_agent *a = t->data;
    px_runtime_rotate_ticket_keys(a->rt);
    ag_events_cert_expiry(a->running, time(NULL)); /* a day without reconciles still warns */
}

static void on_hup(struct ag_agent *a)
{
    if (a->stopping)
        return;
    px_log_info("SIGHUP: reconciling");
    bool was_ready = a->ready_notified;
    if (was_ready) {
        /* systemd shows the unit "reloading" until READY=1 again. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        char msg[96];
        snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)ts.tv_sec * 1000000ull +
                     (unsigned long long)ts.tv_nsec / 1000);
        notify(msg);
    }
    a->pending.all = true; /* check every file, including those outside the folder */
    ag_reconcile(a);
    ag_certsvc_refresh(a->certsvc); /* and ask for every service certificate now */
    if (was_ready) {
        char msg[128];
        snprintf(msg, sizeof msg, "READY=1\nSTATUS=serving generation %llu",
                 (unsigned long long)px_runtime_generation(a->rt));
        notify(msg);
    }
}

/* SIGUSR1: access-log files are reopened (logrotate's postrotate). */
static void on_usr1(void)
{
    px_log_info("SIGUSR1: reopening access logs");
    px_alog_reopen_all();
}

static void on_signalfd(uv_poll_t *p, int status, int events)
{
    struct ag_agent *a = p->data;
    (void)status;
    (void)events;
    struct signalfd_siginfo si;
    while (!uv_is_closing((uv_handle_t *)p) && read(a->sig_fd, &si, sizeof si) == sizeof si) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            on_stop_signal(a, (int)si.ssi_signo);
            break;
        case SIGHUP:
            on_hup(a);
            break;
        case SIGUSR1:
            on_usr1();
            break;
        default:
            break;
        }
    }
}

int ag_run(const struct ag_options *opt)
{
    struct ag_agent a = {.opt = *opt, .loop = uv_default_loop(), .pending = {.all = true}};
    rc_errs_init(&a.last_errs);
    rc_status_init(&a.last_status);
    signal(SIGPIPE, SIG_IGN);
    /* The stop, reload and reopen signals are blocked here, before any
     * thread exists, so that every thread albd or a library starts later
     * inherits the mask, and are read from a signalfd on the agent's loop.
     * (Departs from DESIGN's libuv signal watchers: closing the last
     * uv_signal_t of a signal restores SIG_DFL, and a SIGTERM repeated
     * while albd stops then killed it instead of letting it exit 0.) */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGHUP);
    sigaddset(&stop_set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    a.sig_fd = signalfd(-1, &stop_set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a.sig_fd < 0) {
        px_log_error("cannot read signals (signalfd): %s", strerror(errno));
        return 1;
    }

    a.rt = px_runtime_start(opt->workers);
    if (!a.rt) {
        px_log_error("cannot start the workers: %s", strerror(errno));
        close(a.sig_fd);
        return 1;
    }
    if (px_runtime_workers_take_turns(a.rt))
        px_log_info("%d workers on %d CPU%s (the CPUs albd may run on): the workers take turns, "
                    "each yielding its CPU after 1 ms of running without a pause",
                    px_runtime_n_workers(a.rt), px_runtime_cpus(a.rt),
                    px_runtime_cpus(a.rt) == 1 ? "" : "s");
    px_runtime_set_drain_ms(a.rt, opt->drain_ms);
    px_runtime_set_share_ports(a.rt, opt->share_ports);
    int src = px_runtime_set_worker_scheduling(a.rt, opt->sched_normal ? PX_SCHED_NORMAL
                                                                       : PX_SCHED_BATCH);
    if (src != 0)
        px_log_warn("workers keep the default scheduling (--worker-scheduling %s refused: %s)",
                    opt->sched_normal ? "normal" : "batch", strerror(-src));
    px_runtime_set_session_tickets(a.rt, opt->session_tickets);
    if (opt->n_ticket_key_files) {
        char err[512];
        if (px_runtime_load_ticket_keys(a.rt, opt->ticket_key_files, opt->n_ticket_key_files, err,
                                        sizeof err) != 0) {
            px_log_error("session ticket keys: %s", err);
            px_runtime_stop(a.rt, 0);
            close(a.sig_fd);
            return 1;
        }
    }
    if (px_runtime_start_dns(a.rt, a.loop) != 0) {
        px_log_error("cannot start the host-name resolver: out of memory");
        px_runtime_stop(a.rt, 0);
        close(a.sig_fd);
        return 1;
    }
    uv_timer_init(a.loop, &a.stop_timer);
    a.stop_timer.data = &a;
    uv_timer_init(a.loop, &a.ticket_timer);
    a.ticket_timer.data = &a;
    uv_timer_init(a.loop, &a.retry_timer);
    a.retry_timer.data = &a;
    uv_timer_init(a.loop, &a.certsvc_timer);
    a.certsvc_timer.data = &a;
    int crc = ag_certsvc_start(a.loop, opt->cert_cache_dir, on_cert_cached, &a, &a.certsvc);
    if (crc != 0)
        px_log_error("certificate-service client: %s", strerror(-crc));
    uv_timer_start(&a.ticket_timer, on_ticket_timer, PX_TLS_KEYS_ROTATE_S * 1000,
                   PX_TLS_KEYS_ROTATE_S * 1000);
    uv_poll_init(a.loop, &a.sig_poll, a.sig_fd);
    a.sig_poll.data = &a;
    uv_poll_start(&a.sig_poll, UV_READABLE, on_signalfd);

    int arc = 0;
    if (opt->admin_addr && (arc = ag_admin_start(&a, opt->admin_addr, false, &a.admin)) != 0)
        px_log_error("admin endpoint %s: %s", opt->admin_addr, uv_strerror(arc));
    else if (opt->probe_addr && (arc = ag_admin_start(&a, opt->probe_addr, true, &a.probe)) != 0)
        px_log_error("probe endpoint %s: %s", opt->probe_addr, uv_strerror(arc));
    if (arc != 0) {
        if (arc == UV_EADDRINUSE)
            px_log_error("is another albd running with the same --admin/--probe address?");
        a.exit_status = 1;
        close_handles(&a);
    }
    if (!a.stopping) {
        int rc = ag_watch_start(a.loop, opt->manifest_dir, opt->debounce_ms, on_manifests_changed,
                                &a, &a.watch);
        if (rc != 0)
            px_log_warn("cannot watch %s (%s): reconciling on SIGHUP only", opt->manifest_dir,
                        strerror(-rc));
        px_log_info("albd %s: serving %s", ALBD_VERSION, opt->manifest_dir);
        if (ag_reconcile(&a) < 0 && !a.refused)
            px_log_warn("not ready: fix the manifests, then send SIGHUP");
        if (a.refused) {
            px_log_error("refusing to start: %s", a.last_error);
            a.exit_status = 1;
            close_handles(&a);
        }
    }

    uv_run(a.loop, UV_RUN_DEFAULT);

    px_runtime_stop(a.rt, opt->drain_ms);
    px_alog_shutdown(2000); /* the last lines reach their files */
    rc_model_unref(a.running);
    ag_changes_clear(&a.pending);
    free(a.pending.v);
    rc_errs_cleanup(&a.last_errs);
    rc_status_cleanup(&a.last_status);
    ag_status_forget(&a);
    ag_certdirs_free(a.cert_dirs);
    ag_events_cleanup();
    uv_loop_close(a.loop);
    px_log_info("stopped");
    return a.exit_status;
}
