/* The protocol-neutral request and the response sink: what every client
 * protocol (HTTP/1.1 in h1.c, HTTP/2 in h2.c, later HTTP/3) turns a
 * request into, and what it implements to receive the response. The steps
 * between them run in proxy/req.c (route, action, request transforms,
 * exchange, response filters); the backend side speaks HTTP/1.1 through
 * proxy/backend_h1.c. Types only. */
#ifndef ALBD_PROXY_REQ_T_H
#define ALBD_PROXY_REQ_T_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ip.h"
#include "proxy/headers.h"
#include "proxy/snapshot-t.h"
#include "proxy/tls_ctx-t.h"

/* What albd knows about the client of a connection: filled once per
 * connection by px_client_init, the certificate facts on first need
 * (px_client_cert_load). Owned by the protocol's connection state. */
struct px_client {
    const char *ip, *port;                      /* text, in the connection */
    struct cm_ip addr;                          /* ip in binary (:: when unknown) */
    SSL *ssl;                                   /* NULL on a plain-HTTP listener */
    const char *tls_version, *tls_cipher, *sni; /* NULL when plain or unknown */
    /* X-Forwarded-Clientcert-* facts, read once (renegotiation is refused,
     * so they cannot change); NULL until a listener that sends them needs
     * them. Heap, freed by px_client_cleanup. */
    struct px_client_cert *cc;
};

/* One request as every protocol hands it to the pipeline. Every pointer
 * points into the protocol's own buffers and stays valid until the
 * backend head is built (px_req_start returns). */
struct px_req {
    const struct px_listener *lis; /* the listener it arrived on (its snapshot is held) */
    struct px_client *client;
    const char *method; /* NUL-terminated token */
    const char *scheme; /* "http" / "https" */
    size_t scheme_len;
    const char *authority; /* Host / :authority / absolute-form authority (NULL: none) */
    size_t authority_len;
    /* The authority came from an absolute-form target: it replaces Host
     * in the backend head (RFC 9112 3.2.2). */
    bool target_authority;
    /* The target as the client sent it (HTTP/1.1 absolute-form included;
     * for the domain-fronting check). */
    const char *target;
    size_t target_len;
    /* What the backend gets as its origin-form target (a "/" before it
     * when path_slash: the client's absolute-form had an empty path):
     * the path and query; query points into it after the "?" (NULL:
     * none), for rules that match on it. */
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    bool path_slash;
    /* End-to-end and hop-by-hop fields as received, in order; the
     * pipeline filters them. An absolute-form authority has already
     * replaced Host, and HTTP/2's :authority is a "Host" field. The array
     * is the protocol's scratch (PX_HDR_MAX entries): the pipeline may
     * reorder and shorten it. */
    struct px_hdr *hdrs;
    size_t n_hdrs;
    int minor;            /* the client's HTTP/1.<minor>; HTTP/2: 1 */
    enum px_framing body; /* how the body goes to the backend */
    bool is_head;         /* HEAD: the response has no body */
    bool idempotent;      /* may be sent again after a lost connection */
    const char *upgrade;  /* "websocket" for an upgrade albd passes on, else NULL */
    /* The retrieved client IP, set by px_req_start before the route step:
     * what SourceIp conditions, per-IP limits, the Sch scheduler, access
     * logs and the forwarding headers use. The connection's peer, or an
     * address from X-Forwarded-For under the listener's clientSourceIps
     * rules (px_req_client_ip). */
    struct cm_ip client_addr;
    char client_ip[CM_IP_TEXT_MAX];
};

/* What to do with a request, chosen by px_route: the matched forwarding
 * rule's final action (proxy/router.c), else the listener's default. */
enum px_action_kind {
    PX_ACTION_FORWARD, /* to group, through proxy/exchange.c */
    PX_ACTION_ANSWER,  /* albd answers itself: a redirect or fixed response (proxy/action.c) */
};

struct px_action {
    enum px_action_kind kind;
    struct px_group *group;         /* PX_ACTION_FORWARD: NULL answers 503 */
    const struct rc_action *answer; /* PX_ACTION_ANSWER: the redirect or fixed response */
    const struct rc_rule *rule;     /* the rule that matched; NULL: the default action */
    /* PX_ACTION_ANSWER with answer NULL: the rule's trafficLimit refused
     * the request; answered with this status and ALB-QPS-Limited: Limited. */
    int limited_status;
    /* A forward of a rule with group stickiness whose request named no
     * usable group: the response sets the group cookie
     * (proxy/group_sticky.h). */
    bool set_group_cookie;
};

/* A response head as the backend sent it. */
struct px_resp_head {
    int status;
    const char *reason; /* the backend's reason phrase (may be empty) */
    size_t reason_len;
    const struct px_hdr *h; /* every field, hop-by-hop ones too: the sink filters */
    size_t n;
    bool chunked;    /* the backend sends its body chunked */
    bool has_length; /* ... with a Content-Length */
};

/* What a sink's head returns besides 0 (go on) and -1 (refuse). */
#define PX_SINK_UPGRADE 2 /* a 101 was accepted: the rest is tunnel bytes */

/* A response sink: implemented by each client protocol (and by a response
 * filter, which passes on to the next sink). Called on the worker loop by
 * the backend response parser (proxy/backend_h1.c) in this order: head for
 * each interim response (1xx), head for the final one, data for each
 * piece of its body, trailers (only when the parser keeps them), end.
 * head, data, trailers and end return 0, or -1 to refuse the response
 * (the parser stops; the owner then answers 502 or cuts the response).
 * abort ends a response that cannot complete: before its head, the sink
 * answers with status (502, 504 ...); after it, it cuts the response
 * in the protocol's way (a reset stream, a TCP reset for a
 * close-delimited body). */
struct px_sink {
    int (*head)(void *owner, const struct px_resp_head *rh);
    int (*data)(void *owner, const char *at, size_t len);
    int (*trailers)(void *owner, const struct px_hdr *h, size_t n);
    int (*end)(void *owner);
    void (*abort)(void *owner, int status);
};

/* Request body limits, measured the same way for every protocol:
 * limits.maxRequestBodyBytes and the minimum rate
 * (limits.minBodyRateBytesPerSecond) over windows of
 * PX_BODY_RATE_WINDOW_MS. */
#define PX_BODY_RATE_WINDOW_MS 5000
struct px_body_meter {
    uint64_t total;      /* body bytes so far */
    uint64_t rate_start; /* start of the rate window (0: none) */
    uint64_t rate_bytes; /* bytes in it */
};

#endif
