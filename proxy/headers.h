/* Header rewriting between client and backend: which headers are
 * hop-by-hop, what albd adds (X-Forwarded-*, SLB-ID), and the head of each
 * message it sends. Pure: no I/O, no allocation beyond the output buffer. */
#ifndef ALBD_PROXY_HEADERS_H
#define ALBD_PROXY_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/buf.h"
#include "reconciler/model-t.h"

/* Most header lines a message may carry (more is answered with 431 / 502). */
#define PX_HDR_MAX 256

/* One header line as received; the bytes belong to the caller. */
struct px_hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* How the body of a message albd writes is delimited. */
enum px_framing {
    PX_FRAME_NONE,    /* no body */
    PX_FRAME_LENGTH,  /* the received Content-Length header is passed through */
    PX_FRAME_CHUNKED, /* albd adds "Transfer-Encoding: chunked" and chunks the body */
    PX_FRAME_CLOSE,   /* the body ends when albd closes the connection */
};

/* What albd adds to a forwarded request (from the listener's settings).
 * A NULL string means the header is off.
 *
 * The forwarding-header rule: albd owns every forwarding-metadata header
 * (px_header_is_forwarding: the X-Forwarded-* family, Forwarded, SLB-ID,
 * and the client-certificate headers with their configured names, see
 * px_tls_header_reserved), in every spelling that has '_' for '-' (CGI,
 * WSGI, PHP-FPM and Rack read both as the same variable). A client's copy
 * never reaches a backend, whether or not the listener sends the header;
 * albd then adds its own where enabled. The one exception is
 * X-Forwarded-For spelled exactly so: its mode decides (Append joins the
 * client's values and adds the client address, Remove drops them,
 * Preserve passes them untouched). */
struct px_fwd {
    enum rc_xff_mode xff_mode;
    const char *client_ip;   /* appended to X-Forwarded-For in RC_XFF_APPEND */
    const char *proto;       /* X-Forwarded-Proto: "http" / "https" */
    const char *port;        /* X-Forwarded-Port: the listener port */
    bool host;               /* X-Forwarded-Host: the Host the client sent */
    const char *client_port; /* X-Forwarded-Client-srcport */
    const char *slb_id;      /* SLB-ID: the instance id */
    /* Non-NULL for a protocol upgrade albd passes on (WebSocket): the
     * request carries "Connection: Upgrade" and "Upgrade: <upgrade>"
     * instead of the client's (hop-by-hop) copies and is never keep-alive. */
    const char *upgrade;
    /* More headers albd adds as they are (X-Forwarded-Clientcert-*, see
     * proxy/tls_headers.h); the caller has already removed any client-sent
     * copy from the request's headers. */
    const struct px_hdr *extra;
    size_t n_extra;
};

/* True when the names a[0..alen) and b[0..blen) are the same header to a
 * gateway that maps '-' to '_': case-insensitive, '_' equal to '-'. */
bool px_header_name_eq(const char *a, size_t alen, const char *b, size_t blen);

/* True for a forwarding-metadata header name (see struct px_fwd): any
 * X-Forwarded-* (X-Forwarded-For included), Forwarded or SLB-ID, compared
 * with px_header_name_eq. */
bool px_header_is_forwarding(const char *name, size_t len);

/* True when v[0..len) is a valid Host / :authority value, the one check
 * of both protocols: uri-host [ ":" port ] where uri-host is an
 * IP-literal ("[" hex digits, ":" and "." "]") or a reg-name / IPv4
 * address (letters, digits, "-._~", the sub-delims except "," and
 * %-escapes), never empty; port is 1 to 5 digits with a value of 1 to
 * 65535. So no userinfo ("@"), no list (","), no whitespace, no path, and
 * no empty port ("host:") or port 0: RFC 3986 allows both, but neither
 * names a port a client can reach and backends read them differently. */
bool px_authority_check(const char *v, size_t len);

/* Where the parts of a request target lie (offsets into it). */
struct px_target {
    uint32_t auth_off, auth_len; /* absolute-form: its authority (auth_len 0: none) */
    uint32_t path_off, path_len; /* what the backend gets as origin-form ... */
    bool path_slash;             /* ... after a "/" albd adds (the path is empty) */
};

/* The request-target rule of both protocols: t[0..n) must be visible
 * ASCII only (no CTL, SP or byte above 0x7e) and origin-form ("/..."),
 * "*" for OPTIONS (options true), or, when absolute_ok (HTTP/1.1, RFC
 * 9112 3.2.2; never an HTTP/2 :path, RFC 9113 8.3.1), absolute-form with
 * an http or https scheme and an authority px_authority_check accepts,
 * which then replaces Host. Fills *out; returns 0 or 400. */
int px_target_parse(const char *t, size_t n, bool options, bool absolute_ok, struct px_target *out);

/* True when the comma-separated list v[0..len) has the token tok
 * (case-insensitive, optional whitespace around elements). */
bool px_header_has_token(const char *v, size_t len, const char *tok);

/* True when the header list h[0..n) has no Transfer-Encoding or exactly one
 * whose value is "chunked". A backend response with any other coding
 * ("gzip, chunked", "gzip" then close) is answered 502, as nginx does:
 * albd decodes only chunked, and relaying the still-encoded bytes without
 * their Transfer-Encoding would hand the client a corrupt body. */
bool px_headers_te_chunked_only(const struct px_hdr *h, size_t n);

/* True for the hop-by-hop headers albd never forwards: Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade. */
bool px_header_is_hop(const char *name, size_t len);

/* Sets drop[i] for every hop-by-hop header of h[0..n) and every header
 * named by a Connection header (except Host and Content-Length, which a
 * client must not be able to strip); clears the others. n <= PX_HDR_MAX. */
void px_headers_mark_hop(const struct px_hdr *h, size_t n, bool *drop);

/* Appends the head of the request albd sends to a backend: request line
 * "<method> <target> HTTP/1.<minor>", the client's end-to-end headers
 * except the forwarding-metadata ones (the rule above struct px_fwd), the
 * forwarded headers of fwd, framing (chunked adds Transfer-Encoding) and,
 * for HTTP/1.1 without keepalive, "Connection: close", for HTTP/1.0 with
 * keepalive, "Connection: keep-alive". Returns 0 or the
 * px_buf error. */
int px_headers_request(struct px_buf *out, const char *method, const char *target,
                       size_t target_len, int minor, const struct px_hdr *h, size_t n,
                       const struct px_fwd *fwd, enum px_framing framing, bool keepalive);

/* Appends the head of a response sent to a client speaking HTTP/1.<minor>:
 * status line with the backend's reason phrase (or the standard one when it
 * sent none, or one with a control byte other than HTAB: a NUL, CR or
 * other CTL a client might read as the end of the line; the phrase means
 * nothing to a client, RFC 9112 4, and HTTP/2 clients never see it, so
 * the response goes on rather than becoming a 502), the backend's
 * end-to-end headers, "Transfer-Encoding:
 * chunked" for PX_FRAME_CHUNKED, and "Connection: close" when close (or
 * "Connection: keep-alive" for an HTTP/1.0 client kept open). */
int px_headers_response(struct px_buf *out, int minor, int status, const char *reason,
                        size_t reason_len, const struct px_hdr *h, size_t n,
                        enum px_framing framing, bool close);

/* Appends the head of a 101 response that switches the client to
 * "upgrade" (WebSocket): like px_headers_response, plus "Connection:
 * Upgrade" and "Upgrade: <upgrade>". */
int px_headers_response_upgrade(struct px_buf *out, const char *reason, size_t reason_len,
                                const struct px_hdr *h, size_t n, const char *upgrade);

/* Appends a complete error response generated by albd (status line,
 * Content-Type: text/plain, Cache-Control: no-store, Content-Length,
 * Connection: close, and a one-line body). */
int px_headers_error(struct px_buf *out, int minor, int status);

/* Appends the body of albd's own error response: "<status> <reason>\n"
 * (HTTP/2 sends it with the same fields as px_headers_error). */
int px_headers_error_body(struct px_buf *out, int status);

/* The same response as px_headers_error without its body, for an answer to
 * HEAD (RFC 9110 9.3.2): Content-Length still gives the length a GET would
 * have had. */
int px_headers_error_head(struct px_buf *out, int minor, int status);

/* The standard reason phrase of status ("Unknown" when albd has none). */
const char *px_status_reason(int status);

#endif
