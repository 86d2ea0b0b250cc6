/* Health checks (see health.c): one prober per process, its verdicts in
 * the backend registry (px_backend.health), passive ejection by the
 * exchanges, and a report for /status and /metrics. */
#ifndef ALBD_PROXY_HEALTH_H
#define ALBD_PROXY_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proxy/backend-t.h"
#include "proxy/snapshot-t.h"

struct px_prober;

/* The verdict of one check on one server, as probe results arrive. */
struct px_hc_state {
    int verdict;  /* enum px_health */
    int ok_run;   /* successes in a row */
    int fail_run; /* failures in a row */
};

/* Records one probe result in st. UNKNOWN (no verdict yet) and UP both
 * take unhealthy_threshold failures in a row to become DOWN; a single
 * success turns UNKNOWN into UP (it was already usable); DOWN takes
 * healthy_threshold successes in a row to become UP. Returns true when
 * st->verdict changed. Pure: any thread. */
bool px_hc_record(struct px_hc_state *st, bool ok, int healthy_threshold, int unhealthy_threshold);

/* The status code of the HTTP/1.x status line at the start of buf (len
 * bytes so far): 100-599; 0 when the line is not complete yet; -1 when it
 * is not an HTTP/1.x status line. */
int px_hc_parse_status(const char *buf, size_t len);

/* Whether status is in one of the classes of codes (bit n = http_nxx, as
 * in rc_health_check.codes). */
bool px_hc_code_ok(unsigned codes, int status);

/* Writes the probe request of hc to out (Connection: close; Host: hc->host
 * or else default_host; POST with an empty body). Returns its length, or
 * -1 when it does not fit in outlen. */
int px_hc_request(char *out, size_t outlen, const struct rc_health_check *hc,
                  const char *default_host);

/* Starts the prober: its own thread and uv loop. NULL on failure (errno
 * set). Agent thread. */
struct px_prober *px_prober_start(void);

/* Hands the prober a newly published snapshot (takes a reference, dropped
 * by the prober once it has read it): from then on it probes every server
 * of weight > 0 of every group whose healthCheck is enabled, with that
 * group's settings. Checks and verdicts of servers the previous snapshot
 * probed with the same settings go on unchanged; a server that no check
 * covers any more goes back to UNKNOWN (usable). Agent thread. */
void px_prober_update(struct px_prober *h, struct px_snapshot *s);

/* Stops probing, joins the thread, drops every registry reference the
 * prober held and frees h. Call before the registry is freed. NULL is a
 * no-op. Agent thread. */
void px_prober_stop(struct px_prober *h);

/* What /status and /metrics show for one server of one group. Strings are
 * valid during the callback only. */
struct px_server_health {
    const char *group;
    const char *server;      /* "address:port" */
    const char *verdict;     /* "healthy", "unhealthy", "unknown" (no verdict yet),
                              * "unchecked" (weight 0 or healthCheck disabled) */
    bool up;                 /* server choice may send to it */
    bool ejected;            /* marked down by passive ejection, not by a probe */
    const char *last_result; /* "success", "failure", NULL before the first probe */
    const char *reason;      /* "status code 200", "timeout", "refused", ...; NULL likewise */
    time_t last_probe;       /* wall-clock time of the last probe result, 0 before */
    uint64_t transitions;    /* up <-> down changes of the server since it joined */
    uint64_t slow_start_ms;  /* the backend's slow-start clock (uv_hrtime() ms); 0: none */
    bool draining;           /* no group sends it new requests (proxy/drain.c) */
};

/* Calls fn for every server of every group of the last snapshot handed
 * to px_prober_update, in the snapshot's order, under the prober's small
 * mutex (never taken on the request path): fn must not call back into
 * h. Agent thread. */
void px_prober_each(struct px_prober *h, void (*fn)(const struct px_server_health *sh, void *arg),
                    void *arg);

/* Passive ejection, from an exchange on any worker: a connection to b
 * failed with err, a negative uv error (connect error, or reset / closed
 * before a response byte on a fresh connection). After b->eject_after of
 * them in a row (the unhealthy threshold of the checks that cover b; 0 =
 * never) b is DOWN until a probe succeeds. Errors of this process rather
 * than of b (descriptors, memory or local ports exhausted) do not count. */
void px_health_passive_failure(struct px_backend *b, int err);

/* A response byte came from b: clears its run of failures. Cheap (one
 * relaxed load when there is nothing to clear). Any thread. */
static inline void px_health_passive_ok(struct px_backend *b)
{
    if (atomic_load_explicit(&b->passive_failures, memory_order_relaxed) != 0)
        atomic_store_explicit(&b->passive_failures, 0, memory_order_relaxed);
}

#endif
