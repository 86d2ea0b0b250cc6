/* A memory seam for the proxy's protocol handlers (proxy/h1.c, proxy/h2.c):
 * the real handlers, snapshot, headers and TLS code run on a fake client
 * connection and a fake backend. fuzz_proxy.c defines px_conn_*,
 * px_exchange_*, px_upstream_* and px_tunnel_* itself, so proxy/conn.c,
 * exchange.c, upstream.c and tunnel.c are never linked in: no socket, no
 * event loop run. Used by the fuzz harnesses only. */
#ifndef ALBD_TESTS_FUZZ_PROXY_H
#define ALBD_TESTS_FUZZ_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/conn-t.h"
#include "proxy/exchange-t.h"
#include "proxy/snapshot-t.h"

/* Growable byte string. */
struct fz_bytes {
    char *p;
    size_t n, cap;
};
void fz_bytes_add(struct fz_bytes *b, const void *p, size_t n);
void fz_bytes_free(struct fz_bytes *b);

/* The listeners of tests/fuzz/data/proxy (model order = by name). */
enum fz_listener {
    FZ_LIS_BARE,  /* "a-bare": HTTP, xForwardedFor Remove, no forwarding header */
    FZ_LIS_FULL,  /* "b-full": HTTP, Append and every forwarding header on */
    FZ_LIS_HTTPS, /* "c-https": HTTPS, strictSni, client-certificate headers */
};

/* Loads tests/fuzz/data/proxy and builds a snapshot (once per process);
 * aborts when that fails. */
struct px_snapshot *fz_snapshot(void);
const struct px_listener *fz_listener(enum fz_listener which);

/* The client address the fake connection reports. */
#define FZ_CLIENT_IP "192.0.2.7"
#define FZ_CLIENT_PORT "40000"

/* One backend connection the handler wrote to: every byte it sent. */
struct fz_up {
    struct px_upstream *u;
    struct px_exchange *x;
    struct fz_bytes sent;
    bool released; /* given back (the handler is done with it) */
    bool answered; /* the harness sent a response on it */
};

/* What the fake connection saw. */
struct fz_state {
    struct px_conn *c;
    struct fz_bytes client_out; /* everything written to the client */
    struct fz_up ups[256];
    size_t n_ups;
    size_t n_fail; /* px_exchange fail callbacks */
};
extern struct fz_state fz;

/* Opens a fake client connection on listener which and starts proto. */
struct px_conn *fz_conn_open(const struct px_proto *proto, enum fz_listener which);

/* Offers data to the handler as conn.c would: while it wants input.
 * Between calls, on_idle (may be NULL) runs, e.g. to answer a request
 * waiting for its response; it returns true when it did something that
 * may let the handler take more input. Returns the bytes consumed. */
size_t fz_conn_feed(const char *data, size_t len, bool (*on_idle)(void));

/* The client sent EOF; then the connection is closed and freed (as
 * conn.c would), and every fake backend connection freed. */
void fz_conn_end(void);

/* Sends bytes from the backend of up to its exchange (n < 0: an error
 * such as UV_EOF), as upstream.c would. */
void fz_up_read(struct fz_up *up, const char *data, long n);

/* The active (not released) upstream whose exchange is x, or NULL. */
struct fz_up *fz_up_of(const struct px_exchange *x);

/* Re-parses bytes a backend would receive (one connection's request
 * stream) with llhttp, strictly, up to the end of the first message. With
 * reserved, aborts (fz_fail) when a header field of that message (head or
 * chunked trailers) is one a client must never get to a backend on
 * listener a-bare: a hop-by-hop header other than albd's own
 * "Connection: close", "Connection: Upgrade", "Upgrade: websocket" and
 * "Transfer-Encoding: chunked" (each at most once, in the head), or a
 * forwarding-metadata header (X-Forwarded-*, Forwarded, SLB-ID, in any
 * spelling with '_' for '-', and the listener's client-certificate header
 * names). With ALBD_FUZZ_KNOWN=1 the forwarding-metadata names that issue
 * 9 item 9 is about are let through (see README.md). */
struct fz_req {
    int err;         /* llhttp_errno_t after the bytes (0, or paused) */
    size_t messages; /* messages begun */
    size_t complete; /* messages complete */
    size_t consumed; /* bytes llhttp consumed (stops at the first complete message) */
    char method[32]; /* of the first message */
    struct fz_bytes target;
    unsigned long long body_len;
    bool upgrade;
    /* internal */
    bool reserved, in_trailers, own_seen[5];
    struct fz_bytes name, value;
};
void fz_parse_request(const char *p, size_t n, struct fz_req *out, bool reserved);
void fz_req_free(struct fz_req *r);

/* Aborts with a message (a fuzz finding) when the head of a request or
 * response albd writes (up to its empty line) has a header line that is
 * not "name: value" with a token name and no CR, LF or NUL inside.
 * Returns the head's length (0 when it is not complete). */
size_t fz_check_head(const char *what, const char *p, size_t n);

/* Reports a finding and aborts (libFuzzer then saves the input). */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* True when the environment says to tolerate findings that are open
 * issues (ALBD_FUZZ_KNOWN=1): see tests/fuzz/README.md. */
bool fz_tolerate_known(void);

#endif
