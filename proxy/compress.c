/* Response compression (see compress.h). */
#include "proxy/compress.h"

#include <brotli/encode.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "proxy/snapshot-t.h"

/* gzip: 16 KiB window (windowBits 14, +16 for the gzip wrapper) and
 * memLevel 7: ~133 KiB of deflate state, the same ratio as the 256 KiB
 * default on JSON and text (measured; see README). */
#define GZIP_WBITS (14 + 16)
#define GZIP_MEMLEVEL 7
/* Brotli: 64 KiB window; input is fed in pieces of at most BR_PIECE. */
#define BR_LGWIN 16
#define BR_PIECE 16384

struct px_cz {
    const struct px_sink *next;
    void *next_owner;
    struct px_accept acc;
    bool gzip_on, brotli_on;
    enum px_coding coding; /* of the current response; NONE: passed through */
    z_stream *z;
    BrotliEncoderState *br;
    uint8_t *out; /* PX_COMPRESS_OUT bytes while compressing */
};

/* Responses being compressed on this thread (one worker loop). */
static _Thread_local unsigned live;

/* ---- the decision --------------------------------------------------- */

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool name_is(const struct px_hdr *h, const char *lit)
{
    size_t l = strlen(lit);
    return h->name_len == l && strncasecmp(h->name, lit, l) == 0;
}

static bool tok_is(const char *s, size_t len, const char *lit)
{
    size_t l = strlen(lit);
    return len == l && strncasecmp(s, lit, l) == 0;
}

/* Parses a qvalue (RFC 9110 12.4.2: "0" [ "." 0*3DIGIT ] / "1" [ "."
 * 0*3("0") ]) into thousandths; -1 when malformed. */
static int qvalue(const char *s, size_t len)
{
    if (len == 0 || len > 5 || (s[0] != '0' && s[0] != '1'))
        return -1;
    int v = (s[0] - '0') * 1000;
    if (len == 1)
        return v;
    if (s[1] != '.')
        return -1;
    int scale = 100;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v += (s[i] - '0') * scale;
    }
    return v > 1000 ? -1 : v;
}

/* The q of one element's parameters p[0..len) (";q=0.5;x=y"): 1000 when
 * absent, -1 when malformed. */
static int element_q(const char *p, size_t len)
{
    int q = 1000;
    const char *end = p + len;
    while (p < end) {
        if (*p != ';')
            return -1;
        p++;
        while (p < end && ows(*p))
            p++;
        const char *e = memchr(p, ';', (size_t)(end - p));
        const char *pe = e ? e : end;
        size_t plen = (size_t)(pe - p);
        while (plen && ows(p[plen - 1]))
            plen--;
        if (plen >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
            q = qvalue(p + 2, plen - 2);
        if (q < 0)
            return -1;
        p = pe;
    }
    return q;
}

void px_compress_accept(const struct px_hdr *h, size_t n, struct px_accept *out)
{
    int br = -1, gz = -1, star = -1; /* -1: not named */
    for (size_t i = 0; i < n; i++) {
        if (!name_is(&h[i], "accept-encoding"))
            continue;
        const char *v = h[i].value, *end = v + h[i].value_len;
        while (v < end) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            const char *ee = comma ? comma : end;
            while (v < ee && ows(*v))
                v++;
            const char *t = v;
            while (v < ee && *v != ';' && !ows(*v))
                v++;
            size_t tlen = (size_t)(v - t);
            while (v < ee && ows(*v))
                v++;
            size_t plen = (size_t)(ee - v);
            while (plen && ows(v[plen - 1]))
                plen--;
            int q = element_q(v, plen);
            v = comma ? comma + 1 : end;
            if (tlen == 0 || q < 0)
                continue; /* an empty or malformed element counts for nothing */
            /* The highest q wins when a coding is named twice. */
            if (tok_is(t, tlen, "br"))
                br = q > br ? q : br;
            else if (tok_is(t, tlen, "gzip") || tok_is(t, tlen, "x-gzip"))
                gz = q > gz ? q : gz;
            else if (tok_is(t, tlen, "*"))
                star = q > star ? q : star;
        }
    }
    if (br < 0)
        br = star < 0 ? 0 : star;
    if (gz < 0)
        gz = star < 0 ? 0 : star;
    out->q_br = (uint16_t)br;
    out->q_gzip = (uint16_t)gz;
}

bool px_compress_gzip_type(const char *v, size_t len)
{
    static const char *const types[] = {
        "text/xml",
        "text/plain",
        "text/css",
        "application/javascript",
        "application/x-javascript",
        "application/rss+xml",
        "application/atom+xml",
        "application/xml",
        "application/json",
    };
    while (len && ows(*v))
        v++, len--;
    const char *semi = memchr(v, ';', len);
    if (semi)
        len = (size_t)(semi - v);
    while (len && ows(v[len - 1]))
        len--;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (tok_is(v, len, types[i]))
            return true;
    return false;
}

/* Content-Length as a number; -1 when absent or not all digits. */
static long long content_length(const struct px_resp_head *rh)
{
    for (size_t i = 0; i < rh->n; i++) {
        if (!name_is(&rh->h[i], "content-length"))
            continue;
        const char *v = rh->h[i].value;
        size_t len = rh->h[i].value_len;
        if (len == 0 || len > 18)
            return -1;
        long long x = 0;
        for (size_t k = 0; k < len; k++) {
            if (v[k] < '0' || v[k] > '9')
                return -1;
            x = x * 10 + (v[k] - '0');
        }
        return x;
    }
    return -1;
}

enum px_coding px_compress_choose(const struct px_accept *a, bool gzip_on, bool brotli_on,
                                  bool is_head, const struct px_resp_head *rh)
{
    int st = rh->status;
    if (is_head || st < 200 || st == 204 || st == 206 || st == 304 || !rh->has_length ||
        rh->chunked || content_length(rh) <= PX_COMPRESS_MIN)
        return PX_CODING_NONE;
    bool gzip_type = false;
    for (size_t i = 0; i < rh->n; i++) {
        const struct px_hdr *f = &rh->h[i];
        if (name_is(f, "content-encoding") || name_is(f, "content-range") ||
            (name_is(f, "cache-control") &&
             px_header_has_token(f->value, f->value_len, "no-transform")))
            return PX_CODING_NONE;
        if (name_is(f, "content-type"))
            gzip_type = px_compress_gzip_type(f->value, f->value_len);
    }
    unsigned br = brotli_on ? a->q_br : 0;
    unsigned gz = gzip_on && gzip_type ? a->q_gzip : 0;
    if (br == 0 && gz == 0)
        return PX_CODING_NONE;
    return br >= gz ? PX_CODING_BROTLI : PX_CODING_GZIP;
}

/* ---- the compressors ------------------------------------------------ */

static void stop(struct px_cz *cz)
{
    if (cz->z) {
        deflateEnd(cz->z);
        free(cz->z);
        cz->z = NULL;
    }
    if (cz->br) {
        BrotliEncoderDestroyInstance(cz->br);
        cz->br = NULL;
    }
    free(cz->out);
    cz->out = NULL;
    if (cz->coding != PX_CODING_NONE)
        live--;
    cz->coding = PX_CODING_NONE;
}

/* Starts coding c for a body of size bytes; false when out of memory. */
static bool start(struct px_cz *cz, enum px_coding c, long long size)
{
    cz->out = malloc(PX_COMPRESS_OUT);
    if (!cz->out)
        return false;
    live++;
    cz->coding = c;
    if (c == PX_CODING_GZIP) {
        cz->z = calloc(1, sizeof *cz->z);
        if (!cz->z || deflateInit2(cz->z, PX_COMPRESS_GZIP_LEVEL, Z_DEFLATED, GZIP_WBITS,
                                   GZIP_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(cz->z);
            cz->z = NULL;
            stop(cz);
            return false;
        }
        return true;
    }
    cz->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (!cz->br) {
        stop(cz);
        return false;
    }
    BrotliEncoderSetParameter(cz->br, BROTLI_PARAM_QUALITY, PX_COMPRESS_BROTLI_QUALITY);
    BrotliEncoderSetParameter(cz->br, BROTLI_PARAM_LGWIN, BR_LGWIN);
    if (size > 0 && size < (1 << 30))
        BrotliEncoderSetParameter(cz->br, BROTLI_PARAM_SIZE_HINT, (uint32_t)size);
    return true;
}

/* Passes what the compressor wrote to out[0..n) on; -1 when the next sink
 * refused it. */
static int emit(struct px_cz *cz, size_t n)
{
    if (n == 0)
        return 0;
    return cz->next->data(cz->next_owner, (const char *)cz->out, n) < 0 ? -1 : 0;
}

/* Compresses at[0..len) then flushes (finish: ends the stream). 0 or -1. */
static int gzip_run(struct px_cz *cz, const char *at, size_t len, bool finish)
{
    z_stream *z = cz->z;
    z->next_in = (Bytef *)at;
    z->avail_in = (uInt)len;
    int flush = finish ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
        z->next_out = cz->out;
        z->avail_out = PX_COMPRESS_OUT;
        int rc = deflate(z, flush);
        if (rc == Z_STREAM_ERROR)
            return -1;
        if (emit(cz, PX_COMPRESS_OUT - z->avail_out) < 0)
            return -1;
        if (finish ? rc == Z_STREAM_END : (z->avail_in == 0 && z->avail_out != 0))
            return 0;
    }
}

static int brotli_run(struct px_cz *cz, const char *at, size_t len, bool finish)
{
    const uint8_t *in = (const uint8_t *)at;
    for (;;) {
        size_t piece = len < BR_PIECE ? len : BR_PIECE;
        size_t avail_in = piece;
        bool last = piece == len;
        BrotliEncoderOperation op = !last    ? BROTLI_OPERATION_PROCESS
                                    : finish ? BROTLI_OPERATION_FINISH
                                             : BROTLI_OPERATION_FLUSH;
        do {
            size_t avail_out = PX_COMPRESS_OUT;
            uint8_t *o = cz->out;
            if (!BrotliEncoderCompressStream(cz->br, op, &avail_in, &in, &avail_out, &o, NULL))
                return -1;
            if (emit(cz, PX_COMPRESS_OUT - avail_out) < 0)
                return -1;
        } while (avail_in > 0 || BrotliEncoderHasMoreOutput(cz->br) ||
                 (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(cz->br)));
        len -= piece;
        if (last)
            return 0;
    }
}

static int run(struct px_cz *cz, const char *at, size_t len, bool finish)
{
    return cz->coding == PX_CODING_GZIP ? gzip_run(cz, at, len, finish)
                                        : brotli_run(cz, at, len, finish);
}

/* ---- the filter sink ------------------------------------------------ */

static int f_head(void *owner, const struct px_resp_head *rh)
{
    struct px_cz *cz = owner;
    if (cz->coding != PX_CODING_NONE)
        stop(cz); /* a response that never ended (a retried exchange) */
    if (rh->status < 200)
        return cz->next->head(cz->next_owner, rh);
    enum px_coding c = px_compress_choose(&cz->acc, cz->gzip_on, cz->brotli_on, false, rh);
    if (c == PX_CODING_NONE || live >= PX_COMPRESS_MAX_LIVE || rh->n + 1 > PX_HDR_MAX ||
        !start(cz, c, content_length(rh)))
        return cz->next->head(cz->next_owner, rh);
    /* Names in writable storage: HTTP/2 lowercases them in place. */
    char ce_name[] = "Content-Encoding", vary_name[] = "Vary";
    char etag[512];
    struct px_hdr h[PX_HDR_MAX];
    size_t k = 0;
    bool vary_has = false;
    for (size_t i = 0; i < rh->n; i++) {
        const struct px_hdr *f = &rh->h[i];
        if (name_is(f, "content-length") || name_is(f, "accept-ranges"))
            continue;
        if (name_is(f, "vary") && (px_header_has_token(f->value, f->value_len, "accept-encoding") ||
                                   px_header_has_token(f->value, f->value_len, "*")))
            vary_has = true;
        h[k] = *f;
        if (name_is(f, "etag") && f->value_len && f->value[0] == '"') {
            if (f->value_len + 2 > sizeof etag)
                continue; /* too long to weaken here: dropped, never left strong */
            memcpy(etag, "W/", 2);
            memcpy(etag + 2, f->value, f->value_len);
            h[k].value = etag;
            h[k].value_len = f->value_len + 2;
        }
        k++;
    }
    const char *cv = c == PX_CODING_GZIP ? "gzip" : "br";
    h[k++] = (struct px_hdr){ce_name, sizeof ce_name - 1, cv, strlen(cv)};
    if (!vary_has)
        h[k++] = (struct px_hdr){vary_name, sizeof vary_name - 1, "Accept-Encoding", 15};
    struct px_resp_head out = *rh;
    out.h = h;
    out.n = k;
    out.has_length = false;
    out.chunked = false;
    int rc = cz->next->head(cz->next_owner, &out);
    if (rc != 0)
        stop(cz);
    return rc;
}

static int f_data(void *owner, const char *at, size_t len)
{
    struct px_cz *cz = owner;
    if (cz->coding == PX_CODING_NONE)
        return cz->next->data(cz->next_owner, at, len);
    if (len == 0)
        return 0;
    return run(cz, at, len, false);
}

static int f_trailers(void *owner, const struct px_hdr *h, size_t n)
{
    struct px_cz *cz = owner;
    return cz->next->trailers ? cz->next->trailers(cz->next_owner, h, n) : 0;
}

static int f_end(void *owner)
{
    struct px_cz *cz = owner;
    if (cz->coding != PX_CODING_NONE) {
        int rc = run(cz, NULL, 0, true);
        stop(cz);
        if (rc < 0)
            return -1;
    }
    return cz->next->end(cz->next_owner);
}

static void f_abort(void *owner, int status)
{
    struct px_cz *cz = owner;
    stop(cz);
    cz->next->abort(cz->next_owner, status);
}

static const struct px_sink filter = {
    .head = f_head,
    .data = f_data,
    .trailers = f_trailers,
    .end = f_end,
    .abort = f_abort,
};

int px_compress_attach(struct px_exchange *x, const struct px_req *r, const struct px_sink *next,
                       const struct px_sink **out)
{
    const struct rc_listener *m = r->lis->model;
    *out = next;
    x->sink_owner = x->owner;
    if (x->cz)
        stop(x->cz);
    if ((!m->gzip && !m->brotli) || r->is_head)
        return 0;
    struct px_accept acc;
    px_compress_accept(r->hdrs, r->n_hdrs, &acc);
    if ((!m->brotli || acc.q_br == 0) && (!m->gzip || acc.q_gzip == 0))
        return 0;
    if (!x->cz) {
        x->cz = calloc(1, sizeof *x->cz);
        if (!x->cz)
            return -ENOMEM;
    }
    *x->cz = (struct px_cz){.next = next,
                            .next_owner = x->owner,
                            .acc = acc,
                            .gzip_on = m->gzip,
                            .brotli_on = m->brotli};
    x->sink_owner = x->cz;
    *out = &filter;
    return 0;
}

void px_compress_release(struct px_exchange *x)
{
    px_compress_free(x->cz);
    x->cz = NULL;
}

void px_compress_free(struct px_cz *cz)
{
    if (!cz)
        return;
    stop(cz);
    free(cz);
}
