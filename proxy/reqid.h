/* X-Request-Id (spec.requestId of a Listener): one ID per request, made
 * here or kept from a client the listener trusts, sent to the backend,
 * written to the access log and optionally echoed to the client. */
#ifndef ALBD_PROXY_REQID_H
#define ALBD_PROXY_REQID_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/buf.h"
#include "proxy/headers.h"

/* The longest client value kept (longer ones are replaced), and the
 * buffer an ID needs. */
#define PX_REQID_CLIENT_MAX 128
#define PX_REQID_SIZE (PX_REQID_CLIENT_MAX + 1)

/* Writes a new ID into out (PX_REQID_SIZE bytes) and returns its length:
 * 16 hex digits drawn once per process from the kernel's CSPRNG, the
 * worker id and a per-thread counter ("9f86d081884c7d65-1-2a"), so IDs
 * are unique across workers and restarts without any shared state. Any
 * thread; wid: the calling worker's id. */
size_t px_reqid_new(char *out, int wid);

/* Whether v (n bytes) may be kept as a client's request ID: 1 to
 * PX_REQID_CLIENT_MAX visible ASCII characters. */
bool px_reqid_valid(const char *v, size_t n);

/* The request step: sets the request's X-Request-Id in hdrs (n of them,
 * room for PX_HDR_MAX) to a new ID, or keeps the client's valid one when
 * trust_client; every other X-Request-Id field goes. id receives the ID
 * (PX_REQID_SIZE bytes) and must outlive the fields. Returns the new
 * number of fields. */
size_t px_reqid_apply(struct px_hdr *hdrs, size_t n, bool trust_client, int wid, char *id);

/* Adds "X-Request-Id: id" to a complete HTTP/1.x head in b (before its
 * empty line). 0, or -1 when b cannot grow (b unchanged). */
int px_reqid_echo_h1(struct px_buf *b, const char *id);

#endif
