/* Labelled metrics of the proxy (types and limits in obs-t.h). Names are
 * registered on the agent thread (snapshot build); counters are written
 * by their worker only; the agent reads every worker's block on scrape
 * (agent/obs_metrics.c). */
#ifndef ALBD_PROXY_OBS_H
#define ALBD_PROXY_OBS_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/obs-t.h"

/* Allocates one block per worker (zeroed). 0 or -ENOMEM. Before the
 * workers start; without it every recording function does nothing. */
int px_obs_init(int n_workers);

/* Frees the blocks and the names (after the workers stopped). */
void px_obs_cleanup(void);

/* The slot of name for kind: the same slot for the same name for the
 * process' life (a series survives reloads); the last slot ("_other")
 * once the kind's limit is reached. Any thread (a mutex guards it). */
int px_obs_slot(enum px_obs_kind kind, const char *name);

/* The name of a slot ("_other" for the last), NULL when unused. */
const char *px_obs_name(enum px_obs_kind kind, int slot);

/* Slots in use for kind (names 0 .. n-1, plus possibly the last). */
int px_obs_used(enum px_obs_kind kind);

/* Worker wid's block (NULL before px_obs_init or out of range), and how
 * many there are. The agent reads it with relaxed atomic loads. */
struct px_obs_worker *px_obs_worker(int wid);
int px_obs_n_workers(void);

/* Adds v to a counter owned by the calling worker: a relaxed load and
 * store (one writer), not a locked read-modify-write. */
static inline void px_obs_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* Records ns in h (owned by the calling worker). */
void px_obs_observe(struct px_obs_hist *h, uint64_t ns);

/* The reason enum of an albd reason string (px_alog_reason's, or
 * "client_closed"), PX_OBS_REASONS for NULL / unknown; and its name. */
int px_obs_reason_index(const char *reason);
const char *px_obs_reason_name(int r);

/* Label values of the TLS and connect enums. */
const char *px_obs_tls_version_name(int v);
const char *px_obs_tls_fail_name(int f);
const char *px_obs_connect_fail_name(int f);

/* Records a connection opened / closed on listener slot ls of worker
 * wid, and a TLS handshake's outcome (ok: version is an SSL version
 * constant; failed: fail is enum px_obs_tls_fail and ssl_version the
 * version of the failed connection where known, after its ClientHello:
 * the negotiated one, or for a refused version the one its hello carries;
 * 0 or any other value counts as "unknown"). */
void px_obs_conn(int wid, int ls, int delta);
void px_obs_tls_ok(int wid, int ls, int ssl_version);
void px_obs_tls_fail(int wid, int ls, int fail, int ssl_version);

#endif
