/* A worker: one thread, one uv loop, its listening handles, its client
 * connections and its slot in every backend's idle connection pool. Nothing here is touched by
 * another thread except `snap_pending` handling (through the runtime's
 * atomic pointer), the relaxed-atomic counters in `stats` and
 * `handoff_pending`, and the hand-over inbox under `handoff_lock`. */
#ifndef ALBD_PROXY_WORKER_T_H
#define ALBD_PROXY_WORKER_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/mempool.h"
#include "proxy/snapshot-t.h"

struct px_runtime;
struct px_worker;
struct px_conn;
struct px_registry;
struct h2;

/* A listening socket of this worker, for one px_bind key. Its fd was
 * created, bound and set to listen on the agent thread (px_listen_sockets:
 * SO_REUSEPORT, one per worker), then opened here (px_listen_start). */
struct px_wlisten {
    struct px_worker *w;
    /* albd accepts itself (accept4 on fd when poll says readable) rather
     * than through uv_listen: on EMFILE/ENFILE libuv's accept loop calls
     * back and retries without end once its one spare descriptor is gone
     * (workers share the descriptor table), spinning the worker so that
     * it never closes what would free a descriptor. Here accepting pauses
     * (pause) and resumes later, nginx's way; the connections wait in the
     * kernel's backlog meanwhile. */
    uv_poll_t poll;
    uv_timer_t pause;
    int fd;
    int open_handles;   /* poll and pause; wl is freed when both are closed */
    bool paused_warned; /* the EMFILE warning is logged once per episode */
    char key[96];
    size_t listener;  /* index into w->snap->listeners, refreshed on every swap */
    uint64_t sock_id; /* px_bind.sock_id of the socket this handle owns */
    bool closing;
    struct px_wlisten *next;
};

/* A connection one worker accepted for another, less loaded one
 * (proxy/listen.c): the socket, the bind it came in on, the client. */
struct px_handoff {
    int fd;
    socklen_t peer_len;
    struct sockaddr_storage peer;
    char key[96];
};

/* Handed-over connections a worker takes at most per wake-up; a full inbox
 * makes the accepting worker keep the connection. */
#define PX_HANDOFF_MAX 64

/* Counters read by the agent for /metrics; written with relaxed atomics. */
struct px_worker_stats {
    atomic_uint_fast64_t connections_accepted;
    atomic_uint_fast64_t connections_active;
    /* Accepted here and handed to a less loaded worker (proxy/listen.c). */
    atomic_uint_fast64_t connections_handed_over;
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t responses_by_class[6]; /* index = status / 100 (1xx..5xx), 0 unused */
    atomic_uint_fast64_t upstream_connects;
    atomic_uint_fast64_t upstream_reused;
    /* trafficMirror copies: answered by the mirror, dropped (over
     * PX_MIRROR_MAX_INFLIGHT or no server), failed (proxy/mirror.c). */
    atomic_uint_fast64_t mirror_sent, mirror_dropped, mirror_failed;
    /* Client connections parked (idle, holding no buffer; proxy/conn.c),
     * and bytes of pooled buffers client connections hold right now. */
    atomic_uint_fast64_t connections_parked;
    atomic_uint_fast64_t connection_buffer_bytes;
    /* HTTP/1.x request states client connections hold right now (w->h1_reqs). */
    atomic_uint_fast64_t connection_exchanges;
};

struct px_worker {
    int id;
    struct px_runtime *rt;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;          /* the runtime published a snapshot or asks to stop */
    struct px_snapshot *snap; /* the newest snapshot this worker has seen; one reference */
    struct px_wlisten *listens;
    /* Every open client connection, for draining (intrusive list through
     * px_conn.prev/next; maintained by proxy/conn.c). */
    struct px_conn *conns;
    /* The backend registry (the runtime's): this worker's idle upstream
     * pools are its entries' pools[id]. */
    struct px_registry *registry;
    bool pools_closed; /* stopping: released upstream connections close */
    /* More workers than CPUs: yield the CPU after PX_WORKER_TURN_US of
     * running without blocking (px_runtime_start in px.h says why);
     * turn_since: uv_hrtime() when this run began, turn_idle: the loop's
     * idle time then (worker.c take_turn). */
    bool take_turns;
    uint64_t turn_since, turn_idle;
    /* Runs after backend bytes went to their owner, so that what they
     * produced leaves at once (px_conn_flush_all; set by the worker, so
     * proxy/upstream.c does not know client connections). */
    void (*after_upstream_read)(struct px_worker *w);
    /* Connections with staged output, sent by px_conn_flush_all from the
     * prepare and check phases: after the I/O callbacks of an iteration
     * and before the loop blocks again. */
    struct px_conn *flush_head;
    uv_prepare_t flush_prepare;
    uv_check_t flush_check;
    /* HTTP/2 sessions with output produced by backend reads, serialized by
     * px_h2_flush_pending before the staged output above is sent (at the
     * end of the iteration, or once the oldest has waited
     * PX_WORKER_BATCH_US), so that the responses of one session's streams
     * share TLS records and writes. h2_later_since: uv_hrtime() when the
     * first of them was queued, 0 while none is. */
    struct h2 *h2_later;
    uint64_t h2_later_since;
    /* PX_UPSTREAM_RBUF bytes every backend connection of this worker reads
     * into (proxy/upstream.c; allocated on the first read, freed by
     * px_worker_join). */
    char *up_rbuf;
    bool draining;           /* stop requested: no new connections, finish in-flight */
    uv_timer_t drain_timer;  /* force-closes what is left at the drain deadline */
    uint64_t drain_deadline; /* uv_now() value after which connections are closed */
    bool started;
    atomic_bool done; /* the worker's loop has returned: nothing left to drain */
    /* Connections other workers accepted and hand to this one because it
     * serves fewer (proxy/listen.c). The one part of a worker other
     * threads write: the inbox and handoff_open under handoff_lock (set
     * up by px_listen_handoff_init before any worker starts, destroyed
     * after all are joined); handoff_wake tells this loop. handoff_open
     * is true from the loop's start until it drains. handoff_pending:
     * handed and not yet opened here, counted as this worker's load. */
    uv_mutex_t handoff_lock;
    uv_async_t handoff_wake;
    bool handoff_open;
    unsigned n_handoff;
    struct px_handoff handoff[PX_HANDOFF_MAX];
    atomic_uint_fast64_t handoff_pending;
    struct px_worker_stats stats;
    struct px_mirror *mirrors; /* trafficMirror copies in flight (proxy/mirror.c) */
    unsigned n_mirrors;
    /* Client connections' buffers (proxy/conn.c): 16 KiB read, staging and
     * decrypt buffers, and output-queue chunks, held only while bytes are
     * in them. */
    struct px_bufpool conn_bufs, out_chunks;
    /* HTTP/1.x request states (struct h1_req: the exchange and the header
     * scratch, proxy/h1.c; set up on the first request): a connection
     * holds one from the first byte of a request to the end of its
     * response, so an idle keep-alive connection holds none. */
    struct px_bufpool h1_reqs;
    /* HTTP/2 sessions' header scratch (struct h2_scratch, proxy/h2.c; set
     * up on the first session): held from the first stream until the
     * session parks. */
    struct px_bufpool h2_scratch;
    /* Idle client connections not yet parked, oldest first, and the timer
     * that parks them PX_CONN_PARK_MS after they went idle (initialized on
     * first use; closed by px_conn_worker_close). */
    struct px_conn *idle_head, *idle_tail;
    uv_timer_t park_timer;
    bool park_timer_on;
    /* Connections whose ClientHello waits, oldest first, handled after
     * the iteration's I/O callbacks for at most PX_CONN_HS_BUDGET_US per
     * iteration (conn.c: px_conn_run_handshakes); while any waits, hs_idle
     * keeps the loop from blocking (initialized on first use; closed by
     * px_conn_worker_close). */
    struct px_conn *hs_head, *hs_tail;
    uv_idle_t hs_idle;
    bool hs_idle_on;
};

#endif
