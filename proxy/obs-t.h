/* Per-worker metric counters (proxy/obs.h): written by one worker each
 * with relaxed loads and stores (no locked instruction on the request
 * path, no cache line shared between workers), summed by the agent on
 * scrape. Label values are slots: indexes of names registered when a
 * snapshot is built, so series are bounded by the configuration and by
 * the PX_OBS_* limits below (beyond them, one "_other" series). Types
 * only. */
#ifndef ALBD_PROXY_OBS_T_H
#define ALBD_PROXY_OBS_T_H

#include <stdatomic.h>
#include <stdint.h>

/* Series limits per label; the last slot of each is "_other". */
#define PX_OBS_LISTENERS 128
#define PX_OBS_GROUPS 128
#define PX_OBS_SERVERS 1024

/* Duration histogram buckets (seconds), Prometheus' default set. */
#define PX_OBS_BUCKETS 11
#define PX_OBS_BUCKET_BOUNDS                                                                       \
    {                                                                                              \
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10                                    \
    }

enum px_obs_kind { PX_OBS_LISTENER, PX_OBS_GROUP, PX_OBS_SERVER, PX_OBS_KINDS };

/* albd's reasons for answering itself (proxy/alog.h px_alog_reason),
 * and a client that left first. */
enum px_obs_reason {
    PX_OBS_R_TIMEOUT,
    PX_OBS_R_NO_HEALTHY_SERVER,
    PX_OBS_R_UPSTREAM_ERROR,
    PX_OBS_R_CLIENT_TIMEOUT,
    PX_OBS_R_LIMIT,
    PX_OBS_R_INTERNAL_ERROR,
    PX_OBS_R_REFUSED_REQUEST,
    PX_OBS_R_CLIENT_CLOSED,
    PX_OBS_REASONS
};

/* TLS versions of handshakes, and why handshakes failed. */
enum px_obs_tls_version {
    PX_OBS_TLS10,
    PX_OBS_TLS11,
    PX_OBS_TLS12,
    PX_OBS_TLS13,
    PX_OBS_TLS_VERSIONS
};
enum px_obs_tls_fail {
    PX_OBS_TLSF_PROTOCOL_VERSION, /* no version both sides allow */
    PX_OBS_TLSF_NO_SHARED_CIPHER,
    PX_OBS_TLSF_HTTP_REQUEST,       /* plain HTTP sent to an HTTPS port */
    PX_OBS_TLSF_CLIENT_CERTIFICATE, /* mutual TLS: missing or not verified */
    PX_OBS_TLSF_ALERT,   /* the client sent an alert (it refused albd's certificate ...) */
    PX_OBS_TLSF_EOF,     /* the client closed during the handshake */
    PX_OBS_TLSF_TIMEOUT, /* not finished within the idle timeout */
    PX_OBS_TLSF_OTHER,
    PX_OBS_TLS_FAILS
};

/* Why a backend connection attempt failed. */
enum px_obs_connect_fail {
    PX_OBS_CF_REFUSED,
    PX_OBS_CF_TIMEOUT,
    PX_OBS_CF_OTHER,
    PX_OBS_CONNECT_FAILS
};

struct px_obs_hist {
    _Atomic uint64_t bucket[PX_OBS_BUCKETS]; /* not cumulative: the exporter sums */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};

struct px_obs_listener {
    _Atomic uint64_t requests;
    _Atomic uint64_t responses[6]; /* by status class; [0]: no status (the client left first) */
    _Atomic uint64_t albd[PX_OBS_REASONS];
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t conns_active; /* opened minus closed (this worker's) */
    _Atomic uint64_t tls_ok[PX_OBS_TLS_VERSIONS];
    /* By reason, then by TLS version where known ([PX_OBS_TLS_VERSIONS]:
     * unknown, e.g. no ClientHello was read). */
    _Atomic uint64_t tls_fail[PX_OBS_TLS_FAILS][PX_OBS_TLS_VERSIONS + 1];
    struct px_obs_hist duration;
};

struct px_obs_group {
    _Atomic uint64_t retries;
    struct px_obs_hist upstream; /* request start to the end of the backend's response */
};

struct px_obs_server {
    _Atomic uint64_t responses; /* responses it gave */
    _Atomic uint64_t connect_fail[PX_OBS_CONNECT_FAILS];
    struct px_obs_hist upstream; /* as px_obs_group's, for the requests it answered */
};

struct px_obs_worker {
    struct px_obs_listener lis[PX_OBS_LISTENERS];
    struct px_obs_group grp[PX_OBS_GROUPS];
    struct px_obs_server srv[PX_OBS_SERVERS];
};

#endif
