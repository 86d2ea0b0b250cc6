/* The access log: sinks (one per distinct spec.accessLog.path, shared by
 * every listener and snapshot naming it) and per-request records
 * (alog-t.h).
 *
 * Workers never wait on the destination: px_alog_end copies the finished
 * line into the worker's own slot of the sink (a bounded buffer behind a
 * mutex only that worker and the sink's writer take), and a writer thread
 * per sink swaps the slots out and writes them. When the destination
 * cannot keep up (a full disk, a pipe nobody reads), a slot fills and
 * further lines are dropped and counted (px_alog_dropped_total), never
 * waited for. */
#ifndef ALBD_PROXY_ALOG_H
#define ALBD_PROXY_ALOG_H

#include <stdint.h>

#include "proxy/alog-t.h"
#include "proxy/req-t.h"
#include "proxy/snapshot-t.h"

/* Bytes one worker may have waiting in one sink before it drops lines. */
#define PX_ALOG_SLOT_BYTES (512 * 1024)

/* The sink for path ("-" = standard output, else a file opened for
 * appending, created 0640), shared when another listener already logs
 * there; n_workers slots. Opens the file now, so that an unusable path is
 * an error of the reconcile that asked for it. 0 and one reference in
 * *out, or -errno with a message in err. Agent thread (any thread is
 * safe). */
int px_alog_sink_get(const char *path, int n_workers, struct px_alog_sink **out, char *err,
                     size_t errlen);

/* Drops a reference; the last one stops the writer, which writes what is
 * buffered (waiting at most about a second for a blocked destination) and
 * closes the file. Any thread. */
void px_alog_sink_unref(struct px_alog_sink *s);

/* Asks every sink to reopen its file before its next write (SIGUSR1,
 * after a rotation moved it away). No line is lost: what was buffered
 * goes to the old or the new file. Any thread. */
void px_alog_reopen_all(void);

/* Waits up to wait_ms for the writers of released sinks to finish (call
 * at exit, after the workers stopped and the snapshots were freed). */
void px_alog_shutdown(unsigned wait_ms);

/* Lines dropped because a destination could not keep up or failed, and
 * lines written, since start (every sink). Any thread. */
uint64_t px_alog_dropped_total(void);
uint64_t px_alog_lines_total(void);

/* Starts rec for a request on lis (its metrics), and when lis logs its line:
 * ts, client, listener, TLS facts, http_version ("1.0", "1.1", "2"), and
 * from r (NULL for a request refused before it was parsed) method, host,
 * path, query, user agent and referer. wid: the worker's id. A record
 * already started is left as it is. Worker thread. */
void px_alog_begin(struct px_alog_rec *rec, const struct px_listener *lis, int wid,
                   const struct px_client *cl, const char *http_version, const struct px_req *r);

/* Records the request ID and the server group (name NULL: none). */
void px_alog_request_id(struct px_alog_rec *rec, const char *id);
void px_alog_group(struct px_alog_rec *rec, const struct px_group *g);

/* Records the name of the forwarding rule that matched (NULL: the
 * listener's default action, logged as null). Once per request. */
void px_alog_rule(struct px_alog_rec *rec, const char *name);

/* Upstream facts: a connection to server s is ready; the
 * backend's final response head (status) arrived; its response ended. */
void px_alog_upstream_ready(struct px_alog_rec *rec, const struct px_server *s);
void px_alog_upstream_head(struct px_alog_rec *rec, int status);
void px_alog_upstream_end(struct px_alog_rec *rec);

/* Keeps the sink alive while rec outlives the snapshot it started under
 * (a WebSocket tunnel). */
void px_alog_hold(struct px_alog_rec *rec);

/* Ends rec with the status the client got (0: none, the client left
 * first) and albd's reason when albd answered or cut the response itself
 * (NULL: rec->reason, set when albd answered earlier): writes the line into the sink (unless
 * sample2xx leaves a 1xx-3xx line out) and frees the record. Idempotent:
 * does nothing for an idle record. */
void px_alog_end(struct px_alog_rec *rec, int status, const char *albd_reason);

/* Frees rec without logging (teardown paths). */
void px_alog_discard(struct px_alog_rec *rec);

/* albd's reason for a response it made itself with status: "timeout"
 * (504), "no_healthy_server" (503), "upstream_error" (502),
 * "client_timeout" (408), "limit" (413), "internal_error" (500),
 * "refused_request" (other 4xx and 505). */
const char *px_alog_reason(int status);

#endif
