/* The proxy runtime, as the agent sees it: start workers, apply a model,
 * read counters, stop. Call every function here from the agent thread. */
#ifndef ALBD_PROXY_PX_H
#define ALBD_PROXY_PX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reconciler/model-t.h"

struct px_runtime;

/* Starts n_workers worker threads (n_workers <= 0: one per CPU the process
 * may run on, its affinity mask), each with its own uv loop and no listener
 * yet. Returns NULL with errno set on failure.
 *
 * When there are more workers than CPUs in that mask, the workers share
 * CPUs and take turns: each yields the CPU (sched_yield) at the end of a
 * loop iteration once it has run 1 ms without blocking. Otherwise one that
 * has events keeps its CPU until it has none or the scheduler's next tick
 * (4 ms at HZ=250), and the events of a worker waiting for that CPU wait as
 * long: with two workers on one core (../shared/bench pinned h1_small) p99
 * 2.3-2.6 ms with turns, 1.8-6.2 ms without (README "Worker scheduling"). */
struct px_runtime *px_runtime_start(int n_workers);

/* The workers, the CPUs in the process's affinity mask when the runtime
 * started, and whether the workers take turns on them (more workers than
 * CPUs). */
int px_runtime_n_workers(const struct px_runtime *rt);
int px_runtime_cpus(const struct px_runtime *rt);
bool px_runtime_workers_take_turns(const struct px_runtime *rt);

/* Builds a snapshot from m (taking a reference), opens the sockets of new
 * listening addresses (one SO_REUSEPORT socket per worker), and publishes it
 * with one atomic store; workers pick it up at once. Sockets of unchanged
 * addresses are kept; removed ones stop accepting and their connections
 * drain. On failure (a socket that will not bind, a certificate OpenSSL
 * refuses) nothing is published, the running snapshot keeps serving, and -1
 * is returned with the reason in err. */
struct px_apply_error {
    /* The Listener that made the apply fail (a port that will not bind, a
     * certificate OpenSSL refuses), "" when the failure is not one
     * listener's. The agent contains it and applies the rest. */
    char listener[128];
    char msg[512]; /* never secret */
    /* The listener's address is already served by another process
     * (sharecheck.h) and px_runtime_set_share_ports was not asked. */
    bool port_shared;
};
int px_runtime_apply(struct px_runtime *rt, struct rc_model *m, struct px_apply_error *err);

/* Resolves the servers given by host name on loop (the agent's: the
 * lookups run on libuv's thread pool, the answers come back there) and
 * publishes a new snapshot of the served model whenever a name's addresses
 * change (proxy/dns.c). Without it, host-name servers have no address.
 * Call before the first apply. 0 or -ENOMEM. */
struct uv_loop_s;
int px_runtime_start_dns(struct px_runtime *rt, struct uv_loop_s *loop);

/* Stops the resolver's timers and lookups (so the agent loop can end). */
void px_runtime_close_dns(struct px_runtime *rt);

/* What the resolver knows about a host name, for /status. */
struct px_dns_state;
void px_runtime_host_state(const struct px_runtime *rt, const char *name, struct px_dns_state *out);

/* Replaces the session-ticket key ring with keys read from files (48 or 80
 * bytes each, the first encrypts, all decrypt), so a fleet of albd instances
 * resumes each other's sessions. Such a ring is not rotated. Call before the
 * first apply. Returns 0, or -1 with a reason (naming the file, never its
 * contents) in err. */
int px_runtime_load_ticket_keys(struct px_runtime *rt, const char *const *paths, size_t n,
                                char *err, size_t errlen);

/* How many TLS 1.3 session tickets a full handshake ends with (1 to
 * PX_TLS_TICKETS_MAX = 8, default 1: proxy/tls_keys.h says why), for the
 * generated ring and one loaded from files alike. Call before the first
 * apply. */
void px_runtime_set_session_tickets(struct px_runtime *rt, unsigned n);

/* How long connections of a removed listener (WebSocket tunnels, requests
 * in flight) and, at stop, every connection may take to finish. Call
 * before the first apply. */
void px_runtime_set_drain_ms(struct px_runtime *rt, unsigned drain_ms);

/* Whether a new listening address may be opened when another process
 * already listens there (SO_REUSEPORT splits the connections between the
 * two). false (the default): the apply fails with err.port_shared. */
void px_runtime_set_share_ports(struct px_runtime *rt, bool share);

/* How the kernel schedules the worker threads. PX_SCHED_BATCH (albd's
 * default, --worker-scheduling batch) gives them SCHED_BATCH: a worker
 * woken by network events does not preempt the task running on its CPU; it
 * waits for that task's time slice to end and then handles everything that
 * arrived meanwhile in one loop iteration. On a host whose CPUs are busy
 * (clients, backends or other services beside albd) that turns one
 * wake-up, context switch and cold cache per event or two into one per
 * batch: on ../shared/bench h2_small with proxy, client and origin sharing
 * two cores, proxy CPU per request fell from ~20-28 to ~14-17 us and p99
 * from 86 to 30 ms (quiet run). On an idle CPU a woken worker runs at once, as
 * before; the cost is that, on a saturated CPU, an event may wait up to one
 * scheduler slice (a few ms) for the running task. PX_SCHED_NORMAL keeps
 * SCHED_OTHER. (The workers are named "albd-w<N>": top -H, ps -L.)
 * Returns 0, or -errno of the first thread the kernel refused (the others
 * are still set; seccomp profiles may deny sched_setscheduler). */
enum px_worker_sched { PX_SCHED_NORMAL, PX_SCHED_BATCH };
int px_runtime_set_worker_scheduling(struct px_runtime *rt, enum px_worker_sched how);

/* Starts stopping without waiting: every worker stops accepting and closes
 * its listening sockets, in-flight requests get the drain time set with
 * px_runtime_set_drain_ms. Idempotent. Then poll px_runtime_drained and
 * call px_runtime_stop, which no longer waits for more than the joins. */
void px_runtime_begin_stop(struct px_runtime *rt);

/* Whether every worker has finished draining (its loop has returned). */
bool px_runtime_drained(const struct px_runtime *rt);

/* Rotates the generated session-ticket key (the previous key still
 * decrypts). Call every 300 s; a no-op for keys loaded from files. */
void px_runtime_rotate_ticket_keys(struct px_runtime *rt);

/* The generation of the published snapshot (0 before the first apply). */
uint64_t px_runtime_generation(const struct px_runtime *rt);

struct px_stats {
    uint64_t connections_accepted, connections_active, requests;
    uint64_t connections_handed_over; /* to a less loaded worker (proxy/listen.c) */
    uint64_t responses_by_class[6];
    uint64_t upstream_connects, upstream_reused;
    uint64_t mirror_sent, mirror_dropped, mirror_failed; /* trafficMirror copies */
    /* Client connections parked (idle, holding no buffer), and bytes of
     * pooled read/write buffers client connections hold now. */
    uint64_t connections_parked, connection_buffer_bytes;
    uint64_t connection_exchanges; /* HTTP/1.x request states held (none while idle) */
    int snapshots_alive;
};
void px_runtime_stats(const struct px_runtime *rt, struct px_stats *out);

/* Calls fn for every server of every group of the published snapshot:
 * its health verdict, last probe and transitions (struct px_server_health
 * in proxy/health.h). Takes the prober's small mutex, never a lock of the
 * request path. */
struct px_server_health;
void px_runtime_health_each(struct px_runtime *rt,
                            void (*fn)(const struct px_server_health *sh, void *arg), void *arg);

/* Stops accepting on every listener, lets in-flight requests finish for at
 * most drain_ms (ignored after px_runtime_begin_stop, which used the drain
 * time already set), closes what is left, joins the workers and frees
 * everything. */
void px_runtime_stop(struct px_runtime *rt, unsigned drain_ms);

#endif
