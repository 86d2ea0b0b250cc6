/* Response compression (the listener's compression: gzip and Brotli;
 * alb-https-listener.txt "Compression"), a streaming response filter
 * between the backend parser and the protocol's sink, the same for
 * HTTP/1.1 and HTTP/2.
 *
 * The rules: a response is compressed only when its Content-Length is
 * above PX_COMPRESS_MIN bytes (a response without one, chunked or
 * close-delimited, is passed as it is: the reference triggers on the
 * Content-Length value); never for HEAD, 1xx, 204, 206, 304, a response
 * with Content-Range or Content-Encoding, or with Cache-Control:
 * no-transform (RFC 9110 7.7). Brotli takes any content type; gzip only the
 * reference's nine (px_compress_gzip_type). Accept-Encoding q-values are
 * honoured (q=0 refuses; "*" stands for codings not named; x-gzip is
 * gzip); the coding with the higher q wins and Brotli wins a tie, so a
 * client that accepts both without preference gets Brotli.
 *
 * A compressed response loses Content-Length (HTTP/1.1 then chunks it,
 * HTTP/2 ends it with its DATA frames) and Accept-Ranges, gains
 * Content-Encoding and Vary: Accept-Encoding, and a strong ETag becomes
 * weak. Memory: per compressing stream one compressor (gzip level 4,
 * 16 KiB window: ~140 KiB; Brotli quality 3, 64 KiB window: ~0.7 MiB) and
 * a PX_COMPRESS_OUT output buffer, allocated at the response head and
 * freed at its end; each backend read is compressed and passed on at
 * once (a flush per read), so the protocol's backpressure applies as to
 * uncompressed bytes. At most PX_COMPRESS_MAX_LIVE responses per worker
 * are compressed at once; more go uncompressed. Call only on the owning
 * worker's loop. */
#ifndef ALBD_PROXY_COMPRESS_H
#define ALBD_PROXY_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/exchange-t.h"
#include "proxy/req-t.h"

#define PX_COMPRESS_MIN 1024
#define PX_COMPRESS_OUT 16384
#define PX_COMPRESS_MAX_LIVE 1024
#define PX_COMPRESS_GZIP_LEVEL 4
#define PX_COMPRESS_BROTLI_QUALITY 3

enum px_coding { PX_CODING_NONE, PX_CODING_GZIP, PX_CODING_BROTLI };

/* What a request's Accept-Encoding fields accept: q-values in
 * thousandths (0: refused or not named). */
struct px_accept {
    uint16_t q_br, q_gzip;
};

/* Reads every Accept-Encoding field of h[0..n) into *out. No field, or
 * only empty ones: nothing is accepted (albd does not compress for a
 * client that did not ask). */
void px_compress_accept(const struct px_hdr *h, size_t n, struct px_accept *out);

/* True when the media type of Content-Type value v[0..len) is one gzip
 * takes: text/xml, text/plain, text/css, application/javascript,
 * application/x-javascript, application/rss+xml, application/atom+xml,
 * application/xml, application/json (parameters ignored, case-insensitive). */
bool px_compress_gzip_type(const char *v, size_t len);

/* The coding for response head rh to a request that accepts a (is_head:
 * a HEAD request), with the listener's gzip and brotli switches: every
 * rule above. */
enum px_coding px_compress_choose(const struct px_accept *a, bool gzip_on, bool brotli_on,
                                  bool is_head, const struct px_resp_head *rh);

/* The compression filter for request r on exchange x in front of sink
 * next: returns the sink the response goes to and sets x->sink_owner (the
 * owner to pass it). next itself (owner x->owner) when the listener
 * compresses nothing, r is a HEAD or r accepts neither coding. 0, or
 * -ENOMEM. */
int px_compress_attach(struct px_exchange *x, const struct px_req *r, const struct px_sink *next,
                       const struct px_sink **out);

/* Frees x's filter state (the exchange's owner is going away). */
void px_compress_release(struct px_exchange *x);

/* Frees a filter state taken out of an exchange (x->cz, kept by its
 * connection between requests). NULL is a no-op. */
void px_compress_free(struct px_cz *cz);

#endif
