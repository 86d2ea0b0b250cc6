/* The agent: the main thread's loop and what it knows about the running
 * configuration. */
#ifndef ALBD_AGENT_AGENT_T_H
#define ALBD_AGENT_AGENT_T_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "reconciler/err-t.h"
#include "reconciler/load.h"
#include "reconciler/model-t.h"
#include "agent/watch.h"

struct px_runtime;
struct ag_admin;
struct ag_watch;
struct ag_certsvc;

struct ag_options {
    const char *manifest_dir;
    const char *admin_addr; /* "127.0.0.1:9901", NULL = off */
    int workers;            /* <= 0: one per CPU */
    unsigned grace_ms;      /* SIGTERM: keep accepting this long, /readyz 503, then drain */
    unsigned drain_ms;      /* SIGTERM drain deadline, after the grace */
    bool share_ports;       /* --share-ports: listen where another process listens too */
    bool sched_normal;      /* --worker-scheduling normal: workers stay SCHED_OTHER */
    unsigned debounce_ms;   /* quiet time after a manifest change before reconciling */
    bool strict;
    bool refuse_foreign; /* --refuse-foreign: a non-albd document is an error, not a note */
    const char *ticket_key_files[8]; /* --session-ticket-key, in order */
    size_t n_ticket_key_files;
    unsigned session_tickets;   /* --session-tickets: TLS 1.3 tickets per full handshake */
    const char *probe_addr;     /* --probe: /healthz and /readyz only; NULL = off */
    const char *admin_hosts[8]; /* --admin-host: names accepted in Host besides IPs, localhost */
    size_t n_admin_hosts;
    const char *cert_cache_dir; /* --cert-cache: service certificates (agent/certsvc.h) */
    bool ready_when_any;        /* --ready-when-any: /readyz 200 while some listeners wait */
};

struct ag_agent {
    struct ag_options opt;
    uv_loop_t *loop;
    struct px_runtime *rt;
    struct rc_model *running; /* the model being served (one reference), NULL before the first */
    /* TERM, INT, HUP and USR1 (reopen access logs, proxy/alog.h) stay
     * blocked in every thread from the start of ag_run and are read from
     * this signalfd: no handler is ever installed, so none is taken away
     * while albd stops (see ag_run). */
    int sig_fd;
    uv_poll_t sig_poll;
    uv_timer_t ticket_timer; /* rotates generated session-ticket keys */
    /* Reconciles again while a listener could not be applied (its port
     * would not bind ...), backing off from 1 s to 60 s; retry_ms 0: idle. */
    uv_timer_t retry_timer;
    unsigned retry_ms;
    struct ag_admin *admin;
    struct ag_admin *probe; /* --probe endpoint, NULL when off */
    struct ag_watch *watch; /* NULL when the tree cannot be watched */

    struct ag_certsvc *certsvc; /* the certificate-service client */
    uv_timer_t certsvc_timer;   /* a new version was cached: reconcile soon */
    size_t listeners_pending;   /* listeners waiting for a service certificate */
    /* What changed under the manifest folder since the running model's
     * load began (all: unknown — before the first load, after SIGHUP).
     * The loader checks only these files (reconciler/changes.h). */
    struct ag_changes pending;
    /* ag_watch_epoch when the running model's load began. */
    uint64_t running_epoch;
    /* The certificate folders outside the manifest folder the watcher
     * watches (run.c watch_cert_folders, agent/certdirs.h); NULL until
     * the first model. */
    struct ag_certdirs *cert_dirs;
    /* SIGTERM: /readyz answers 503, listeners accept for opt.grace_ms
     * (stop_timer), then the workers drain (stop_timer polls them), then
     * the agent's handles close and its loop ends. */
    bool stopping;
    bool workers_draining; /* the grace is over: px_runtime_begin_stop was called */
    uv_timer_t stop_timer; /* the grace, then the drain poll */
    bool ready_notified;   /* READY=1 sent to systemd (after the first apply) */
    bool refused;          /* the first apply found a port served by another process */
    int exit_status;

    /* What /status and /metrics report. */
    /* ok: everything applied; partial: applied with invalid resources
     * contained; failed: nothing applied. */
    uint64_t reconciles_ok, reconciles_partial, reconciles_failed;
    double last_apply_seconds;    /* duration of the last successful apply */
    time_t last_applied;          /* wall time of the last successful apply, 0 = never */
    char manifest_digest[65];     /* of the running model */
    struct rc_errs last_errs;     /* problems of the last reconcile (errors and warnings) */
    struct rc_status last_status; /* per-resource state of the last reconcile */
    char last_error[512];         /* the last apply failure, "" if the last reconcile succeeded */
    /* Per resource "Kind/name" across reloads (agent/status_track.h, kept
     * by ag_status_observe): /status observedGeneration and each
     * condition's lastTransitionTime. NULL until the first reconcile. */
    struct ag_track *status_track;
};

#endif
