/* The fake connection, fake exchange and fake backend of fuzz_proxy.h. */
#include "tests/fuzz/fuzz_proxy.h"

#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/mirror.h"
#include "proxy/backend.h"
#include "proxy/conn-io.h"
#include "proxy/exchange.h"
#include "proxy/h2.h"
#include "proxy/headers.h"
#include "common/log.h"
#include "proxy/snapshot.h"
#include "proxy/tls_keys.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"
#include "reconciler/rc.h"

#ifndef ALBD_FUZZ_DATA
#error "ALBD_FUZZ_DATA must name tests/fuzz/data"
#endif

struct fz_state fz;

void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FUZZ FINDING: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (getenv("ALBD_FUZZ_VERBOSE")) {
        for (size_t i = 0; i < fz.n_ups; i++)
            fprintf(stderr, "--- backend %zu got:\n%.*s\n", i, (int)fz.ups[i].sent.n,
                    fz.ups[i].sent.p);
        fprintf(stderr, "--- the client got:\n%.*s\n", (int)fz.client_out.n, fz.client_out.p);
    }
    abort();
}

bool fz_tolerate_known(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("ALBD_FUZZ_KNOWN");
        v = e && strcmp(e, "1") == 0;
    }
    return v;
}

void fz_bytes_add(struct fz_bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            abort();
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void fz_bytes_free(struct fz_bytes *b)
{
    free(b->p);
    *b = (struct fz_bytes){0};
}

/* --- the configuration -------------------------------------------------- */

static struct px_snapshot *snap;
static struct px_worker worker;

struct px_snapshot *fz_snapshot(void)
{
    if (snap)
        return snap;
    px_log_set_level(PX_LOG_ERROR);
    struct rc_errs errs = {0};
    struct rc_model *m = NULL;
    /* A fixed "now" inside the test certificates' validity. */
    if (rc_load_dir(ALBD_FUZZ_DATA "/proxy", 1893456000 /* 2030-01-01 */, &m, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s:%d: %s\n", errs.v[i].file ? errs.v[i].file : "", errs.v[i].line,
                    errs.v[i].msg);
        fz_fail("cannot load %s/proxy", ALBD_FUZZ_DATA);
    }
    rc_errs_cleanup(&errs);
    struct px_tls_keys *keys = px_tls_keys_new();
    struct px_registry *reg = px_registry_new(1); /* lives as long as the snapshot: the process */
    char err[256];
    const char *failed = NULL;
    if (!keys || !reg ||
        px_snapshot_build(m, NULL, NULL, reg, 1, keys, &snap, err, sizeof err, &failed) != 0)
        fz_fail("cannot build the snapshot: %s", err);
    px_tls_keys_unref(keys);
    rc_model_unref(m);
    if (snap->n_listeners != 3)
        fz_fail("expected 3 listeners in %s/proxy", ALBD_FUZZ_DATA);
    if (uv_loop_init(&worker.loop) != 0)
        fz_fail("uv_loop_init");
    px_bufpool_init(&worker.conn_bufs, PX_CONN_BUF, 16);
    worker.registry = reg;
    worker.snap = snap;
    return snap;
}

const struct px_listener *fz_listener(enum fz_listener which)
{
    return &fz_snapshot()->listeners[which];
}

/* --- the fake client connection (proxy/conn-io.h) ----------------------- */

struct px_conn *fz_conn_open(const struct px_proto *proto, enum fz_listener which)
{
    struct px_snapshot *s = fz_snapshot();
    struct px_conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    memset(&fz, 0, sizeof fz);
    fz.c = c;
    c->w = &worker;
    c->snap = px_snapshot_ref(s);
    c->lis = &s->listeners[which];
    snprintf(c->client_ip, sizeof c->client_ip, "%s", FZ_CLIENT_IP);
    snprintf(c->client_port, sizeof c->client_port, "%s", FZ_CLIENT_PORT);
    c->proto = proto;
    c->state = PX_CONN_OPEN;
    c->want_input = true;
    if (proto->start(c) != 0)
        fz_fail("%s start failed", proto->name);
    return c;
}

int px_conn_write(struct px_conn *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->closing || c->wr_shut)
        return -EPIPE;
    for (unsigned i = 0; i < n; i++)
        fz_bytes_add(&fz.client_out, bufs[i].base, bufs[i].len);
    return 0;
}

bool px_conn_congested(const struct px_conn *c)
{
    (void)c;
    return false;
}

void px_conn_want_input(struct px_conn *c, bool want)
{
    c->want_input = want;
}

void px_conn_timer(struct px_conn *c, uint64_t ms)
{
    (void)c;
    (void)ms;
}

void px_conn_finish(struct px_conn *c)
{
    if (c->state == PX_CONN_OPEN)
        c->state = PX_CONN_FINISHING;
}

void px_conn_shutdown_write(struct px_conn *c)
{
    c->wr_shut = true;
}

int px_conn_snapshot_refresh(struct px_conn *c)
{
    (void)c;
    return 0;
}

bool px_conn_listener_gone(const struct px_conn *c)
{
    (void)c;
    return false;
}

/* Parks at once (proxy/conn.c waits PX_CONN_PARK_MS): every idle moment of
 * a fuzzed session releases the handler's scratch, so the next bytes run
 * the re-acquiring paths. */
void px_conn_idle(struct px_conn *c)
{
    if (!c->closing && c->state == PX_CONN_OPEN && c->proto->idle && c->proto->idle(c) &&
        c->proto->park)
        c->proto->park(c);
}

void px_conn_close(struct px_conn *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    c->state = PX_CONN_CLOSING;
    if (c->proto && c->proto->on_close)
        c->proto->on_close(c);
}

void px_conn_abort(struct px_conn *c)
{
    px_conn_close(c);
}

size_t fz_conn_feed(const char *data, size_t len, bool (*on_idle)(void))
{
    struct px_conn *c = fz.c;
    size_t off = 0;
    unsigned stuck = 0;
    for (;;) {
        while (!c->closing && c->state == PX_CONN_OPEN && c->want_input && off < len && stuck < 2) {
            size_t n = c->proto->on_data(c, data + off, len - off);
            if (n > len - off)
                fz_fail("%s on_data consumed %zu of %zu bytes", c->proto->name, n, len - off);
            stuck = n == 0 ? stuck + 1 : 0;
            off += n;
        }
        if (c->closing || !on_idle || !on_idle())
            break;
        stuck = 0;
    }
    return off;
}

void fz_conn_end(void)
{
    struct px_conn *c = fz.c;
    if (!c)
        return;
    if (getenv("ALBD_FUZZ_VERBOSE")) {
        size_t sent = 0;
        for (size_t i = 0; i < fz.n_ups; i++)
            sent += fz.ups[i].sent.n;
        fprintf(stderr,
                "%s: %zu backend requests (%zu bytes), %zu failed, %zu bytes to the client\n",
                c->proto->name, fz.n_ups, sent, fz.n_fail, fz.client_out.n);
        if (getenv("ALBD_FUZZ_VERBOSE")[0] == '2') {
            for (size_t i = 0; i < fz.n_ups; i++)
                fprintf(stderr, "--- backend %zu:\n%.*s\n", i, (int)fz.ups[i].sent.n,
                        fz.ups[i].sent.p);
            fprintf(stderr, "--- client:\n%.*s\n", (int)fz.client_out.n, fz.client_out.p);
        }
    }
    if (!c->closing) {
        c->eof = true;
        if (c->state == PX_CONN_OPEN && c->proto->on_eof)
            c->proto->on_eof(c);
    }
    px_conn_close(c);
    if (c->proto->free)
        c->proto->free(c);
    px_snapshot_unref(c->snap);
    free(c);
    for (size_t i = 0; i < fz.n_ups; i++) {
        free(fz.ups[i].u);
        fz_bytes_free(&fz.ups[i].sent);
    }
    fz_bytes_free(&fz.client_out);
    memset(&fz, 0, sizeof fz);
}

/* --- the fake exchange (proxy/exchange.h): one server, always pooled ----- */

void px_exchange_init(struct px_exchange *x, struct px_worker *w, const char *tag,
                      const struct px_exchange_cbs *cbs, void *owner)
{
    *x = (struct px_exchange){.cbs = cbs, .owner = owner, .w = w, .tag = tag};
}

struct px_group *px_exchange_choose_group(const struct px_listener *lis)
{
    return lis->default_group;
}

void px_exchange_begin(struct px_exchange *x, const struct px_listener *lis)
{
    x->group = px_exchange_choose_group(lis);
    x->server = NULL;
    x->first = x->cursor = 0;
    x->attempts = 0;
    x->retried_fresh = false;
    x->last_timeout = false;
    x->ready = false;
}

struct fz_up *fz_up_of(const struct px_exchange *x)
{
    for (size_t i = 0; i < fz.n_ups; i++)
        if (fz.ups[i].x == x && !fz.ups[i].released && fz.ups[i].u == x->u)
            return &fz.ups[i];
    return NULL;
}

static struct fz_up *up_find(const struct px_upstream *u)
{
    for (size_t i = 0; i < fz.n_ups; i++)
        if (fz.ups[i].u == u)
            return &fz.ups[i];
    fz_fail("unknown upstream %p", (const void *)u);
}

void px_exchange_release(struct px_exchange *x, bool keep)
{
    if (x->u) {
        px_upstream_release(x->u, keep);
        x->u = NULL;
    }
    x->ready = false;
}

void px_exchange_connect(struct px_exchange *x)
{
    struct px_group *g = x->group;
    if (!g || g->n_servers == 0 || x->attempts > 0 ||
        fz.n_ups == sizeof fz.ups / sizeof fz.ups[0]) {
        fz.n_fail++;
        x->cbs->fail(x->owner, x->attempts == 0 ? 503 : 502);
        return;
    }
    x->attempts++;
    x->server = &g->servers[0];
    struct fz_up *up = &fz.ups[fz.n_ups++];
    *up = (struct fz_up){.u = calloc(1, sizeof(struct px_upstream)), .x = x};
    if (!up->u)
        abort();
    x->u = up->u;
    x->u_reused = true;
    x->ready = true;
    x->cbs->ready(x->owner);
}

void px_exchange_lost(struct px_exchange *x, int err)
{
    (void)err;
    px_exchange_release(x, false);
    fz.n_fail++;
    x->cbs->fail(x->owner, 502);
}

void fz_up_read(struct fz_up *up, const char *data, long n)
{
    up->answered = true;
    up->x->cbs->on_read(up->x->owner, data, (ssize_t)n);
    /* The end of the loop iteration (proxy/worker.c): HTTP/2 output that
     * backend reads left for later is produced. */
    px_h2_flush_pending(&worker);
}

/* --- the fake backend connection (proxy/upstream.h) --------------------- */

int px_upstream_write(struct px_upstream *u, const uv_buf_t *bufs, unsigned n)
{
    struct fz_up *up = up_find(u);
    if (up->released)
        fz_fail("write to a released upstream");
    for (unsigned i = 0; i < n; i++)
        fz_bytes_add(&up->sent, bufs[i].base, bufs[i].len);
    return 0;
}

bool px_upstream_congested(const struct px_upstream *u)
{
    (void)u;
    return false;
}

void px_upstream_read(struct px_upstream *u, bool on)
{
    (void)u;
    (void)on;
}

void px_upstream_release(struct px_upstream *u, bool keep)
{
    (void)keep;
    struct fz_up *up = up_find(u);
    if (up->released)
        fz_fail("upstream released twice");
    up->released = true;
}

/* --- WebSocket tunnels are not fuzzed here: an upgrade is refused -------- */

struct px_tunnel *px_tunnel_new(struct px_upstream *u, const struct px_tunnel_client *client,
                                void *ctx)
{
    (void)u;
    (void)client;
    (void)ctx;
    return NULL;
}

size_t px_tunnel_client_data(struct px_tunnel *t, const char *data, size_t len)
{
    (void)t;
    (void)data;
    return len;
}

void px_tunnel_client_eof(struct px_tunnel *t)
{
    (void)t;
}

void px_tunnel_client_writable(struct px_tunnel *t)
{
    (void)t;
}

void px_tunnel_free(struct px_tunnel *t)
{
    (void)t;
}

/* --- checks ------------------------------------------------------------- */

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

size_t fz_check_head(const char *what, const char *p, size_t n)
{
    const char *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e)
        return 0;
    size_t end = (size_t)(e - p) + 2; /* after the last line's CRLF */
    size_t start = 0, line = 0;
    while (start < end) {
        const char *l = p + start;
        const char *crlf = memmem(l, end - start, "\r\n", 2);
        size_t ll = (size_t)(crlf - l);
        for (size_t k = 0; k < ll; k++)
            if (l[k] == '\r' || l[k] == '\n' || l[k] == '\0')
                fz_fail("%s head line %zu has a CR, LF or NUL at %zu: %.*s", what, line, k, (int)ll,
                        l);
        if (line > 0) {
            size_t k = 0;
            while (k < ll && is_tchar((unsigned char)l[k]))
                k++;
            if (k == 0 || k == ll || l[k] != ':')
                fz_fail("%s head line %zu is not a header field: %.*s", what, line, (int)ll, l);
        } else if (ll == 0) {
            fz_fail("%s head starts with an empty line", what);
        }
        line++;
        start += ll + 2;
    }
    return end + 2;
}

/* The forwarding-metadata family, compared with '_' read as '-'. */
static bool forwarding_name(const char *n, size_t l, bool *known)
{
    char low[64];
    *known = false;
    if (l >= sizeof low)
        return false;
    for (size_t i = 0; i < l; i++) {
        char ch = n[i] >= 'A' && n[i] <= 'Z' ? (char)(n[i] - 'A' + 'a') : n[i];
        low[i] = ch == '_' ? '-' : ch;
    }
    low[l] = '\0';
    bool fam = strncmp(low, "x-forwarded-", 12) == 0 || strcmp(low, "forwarded") == 0 ||
               strcmp(low, "slb-id") == 0;
    if (!fam)
        return false;
    /* What albd strips today: X-Forwarded-For (mode Remove) and the four
     * reference client-certificate names, spelled with '-'. Every other
     * member of the family is issue 9 item 9 (open): known. */
    static const char *const stripped[] = {
        "x-forwarded-for",
        "x-forwarded-clientcert-subjectdn",
        "x-forwarded-clientcert-issuerdn",
        "x-forwarded-clientcert-fingerprint",
        "x-forwarded-clientcert-clientverify",
    };
    bool is_stripped = false;
    for (size_t i = 0; i < sizeof stripped / sizeof stripped[0]; i++)
        if (strcmp(low, stripped[i]) == 0 && memchr(n, '_', l) == NULL)
            is_stripped = true;
    *known = !is_stripped;
    return true;
}

static void check_field(struct fz_req *r, const char *n, size_t nl, const char *v, size_t vl)
{
    /* albd's own: close (HTTP/1.1 without keep-alive), keep-alive (an
     * HTTP/1.0 request that may keep its connection), upgrades, framing. */
    static const char *const own[5] = {"Connection: close", "Connection: Upgrade",
                                       "Upgrade: websocket", "Transfer-Encoding: chunked",
                                       "Connection: keep-alive"};
    if (px_header_is_hop(n, nl)) {
        for (size_t i = 0; i < 5 && !r->in_trailers; i++) {
            size_t on = (size_t)(strchr(own[i], ':') - own[i]);
            if (nl == on && memcmp(n, own[i], on) == 0 && vl == strlen(own[i]) - on - 2 &&
                memcmp(v, own[i] + on + 2, vl) == 0 && !r->own_seen[i]) {
                r->own_seen[i] = true;
                return;
            }
        }
        fz_fail("hop-by-hop header reaches the backend%s: %.*s: %.*s",
                r->in_trailers ? " (trailer)" : "", (int)nl, n, (int)vl, v);
    }
    bool known; /* issue 9 item 9's names: fixed, so strict like the rest */
    if (forwarding_name(n, nl, &known))
        fz_fail("client's forwarding header reaches the backend%s: %.*s: %.*s",
                r->in_trailers ? " (trailer)" : "", (int)nl, n, (int)vl, v);
}

static int rq_field(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *r = p->data;
    if (r->messages == 1)
        fz_bytes_add(&r->name, at, len);
    return 0;
}

static int rq_value(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *r = p->data;
    if (r->messages == 1)
        fz_bytes_add(&r->value, at, len);
    return 0;
}

static int rq_value_done(llhttp_t *p)
{
    struct fz_req *r = p->data;
    if (r->messages == 1 && r->reserved)
        check_field(r, r->name.p, r->name.n, r->value.p, r->value.n);
    r->name.n = r->value.n = 0;
    return 0;
}

static int rq_begin(llhttp_t *p)
{
    struct fz_req *r = p->data;
    r->messages++;
    return 0;
}

static int rq_url(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *r = p->data;
    if (r->messages == 1)
        fz_bytes_add(&r->target, at, len);
    return 0;
}

static int rq_headers_complete(llhttp_t *p)
{
    struct fz_req *r = p->data;
    r->in_trailers = true;
    if (r->messages == 1) {
        snprintf(r->method, sizeof r->method, "%s", llhttp_method_name(llhttp_get_method(p)));
        r->upgrade = llhttp_get_upgrade(p);
    }
    return 0;
}

static int rq_body(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *r = p->data;
    (void)at;
    if (r->messages == 1)
        r->body_len += len;
    return 0;
}

static int rq_complete(llhttp_t *p)
{
    struct fz_req *r = p->data;
    r->complete++;
    return HPE_PAUSED; /* stop after the first message: the caller counts what is left */
}

void fz_parse_request(const char *p, size_t n, struct fz_req *out, bool reserved)
{
    static const llhttp_settings_t st = {
        .on_message_begin = rq_begin,
        .on_url = rq_url,
        .on_header_field = rq_field,
        .on_header_value = rq_value,
        .on_header_value_complete = rq_value_done,
        .on_headers_complete = rq_headers_complete,
        .on_body = rq_body,
        .on_message_complete = rq_complete,
    };
    memset(out, 0, sizeof *out);
    out->reserved = reserved;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &st);
    parser.data = out;
    llhttp_errno_t e = llhttp_execute(&parser, p, n);
    out->err = (int)e;
    out->consumed = e == HPE_OK ? n : (size_t)(llhttp_get_error_pos(&parser) - p);
}

void fz_req_free(struct fz_req *r)
{
    fz_bytes_free(&r->target);
    fz_bytes_free(&r->name);
    fz_bytes_free(&r->value);
}

/* trafficMirror copies (proxy/mirror.c) are not part of the seam: they
 * would take upstream connections of their own. */
bool px_mirror_eligible(const struct px_req *r)
{
    (void)r;
    return false;
}

void px_mirror_send(struct px_worker *w, const struct px_req *r, const struct rc_rule *rule,
                    const char *head, size_t len)
{
    (void)w, (void)r, (void)rule, (void)head, (void)len;
}

void px_mirror_abort_all(struct px_worker *w)
{
    (void)w;
}
