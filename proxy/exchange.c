/* Backend choice and failover shared by proxy/h1.c and proxy/h2.c. */
#include "proxy/exchange.h"

#include <stdio.h>

#include "common/log.h"
#include "proxy/health.h"
#include "proxy/alog.h"
#include "proxy/lb.h"
#include "proxy/obs.h"
#include "proxy/snapshot.h"
#include "proxy/upstream.h"

static const struct px_upstream_cbs up_cbs;

void px_exchange_init(struct px_exchange *x, struct px_worker *w, const char *tag,
                      const struct px_exchange_cbs *cbs, void *owner)
{
    *x = (struct px_exchange){.cbs = cbs, .owner = owner, .w = w, .tag = tag};
}

struct px_group *px_exchange_choose_group(const struct px_listener *lis)
{
    return lis->default_group;
}

struct px_server *px_exchange_choose_server(struct px_exchange *x)
{
    struct px_group *g = x->group;
    if (!g || x->attempts >= g->n_servers)
        return NULL;
    if (x->attempts == 0) {
        struct px_server *s = px_lb_pick(g, x->w->id, &x->lb_key);
        if (s)
            x->first = (size_t)(s - g->servers);
        return s;
    }
    return px_lb_next(g, x->first, &x->cursor);
}

void px_exchange_begin(struct px_exchange *x, const struct px_listener *lis)
{
    x->group = px_exchange_choose_group(lis);
    x->server = NULL;
    x->first = 0;
    x->cursor = 0;
    x->attempts = 0;
    x->retried_fresh = false;
    x->last_timeout = false;
    x->ready = false;
    x->lb_key = (struct px_lb_key){0};
}

void px_exchange_release(struct px_exchange *x, bool keep)
{
    if (x->u) {
        px_upstream_release(x->u, keep);
        x->u = NULL;
    }
    x->ready = false;
}

/* A connection attempt to x->server failed (err: a negative uv error):
 * counted by reason, and logged at most a few times per worker per
 * window (a dead backend fails every request). */
static void connect_failed(struct px_exchange *x, int err)
{
    static _Thread_local struct px_log_limit limit;
    int why = err == UV_ECONNREFUSED ? PX_OBS_CF_REFUSED
              : err == UV_ETIMEDOUT  ? PX_OBS_CF_TIMEOUT
                                     : PX_OBS_CF_OTHER;
    struct px_obs_worker *b = px_obs_worker(x->w->id);
    if (b && x->server->obs_slot >= 0 && x->server->obs_slot < PX_OBS_SERVERS)
        px_obs_add(&b->srv[x->server->obs_slot].connect_fail[why], 1);
    unsigned suppressed;
    if (!px_log_limit_allow(&limit, uv_now(&x->w->loop), &suppressed))
        return;
    char more[64] = "";
    if (suppressed)
        snprintf(more, sizeof more, " (%u more suppressed)", suppressed);
    px_log_warn("%s: cannot connect to %s (server group %s): %s%s", x->tag, x->server->key,
                x->group ? x->group->model->meta.name : "?", uv_strerror(err), more);
}

/* Another attempt for the same request (failover or a fresh connection). */
static void count_retry(struct px_exchange *x)
{
    struct px_obs_worker *b = px_obs_worker(x->w->id);
    if (b && x->group && x->group->obs_slot >= 0 && x->group->obs_slot < PX_OBS_GROUPS)
        px_obs_add(&b->grp[x->group->obs_slot].retries, 1);
}

static void use_server(struct px_exchange *x, struct px_server *s, bool allow_pooled)
{
    bool reused = false;
    x->server = s;
    x->ready = false;
    int rc = px_upstream_acquire(x->w, s, allow_pooled, &up_cbs, x, &x->u, &reused);
    if (rc < 0) {
        x->u = NULL;
        connect_failed(x, rc);
        px_exchange_connect(x);
        return;
    }
    x->u_reused = reused;
    if (reused) {
        px_alog_upstream_ready(&x->log, s);
        x->ready = true;
        x->cbs->ready(x->owner);
    }
}

void px_exchange_connect(struct px_exchange *x)
{
    struct px_server *s = px_exchange_choose_server(x);
    if (!s) {
        x->cbs->fail(x->owner, x->attempts == 0 ? 503 : x->last_timeout ? 504 : 502);
        return;
    }
    if (x->attempts)
        count_retry(x);
    x->attempts++;
    use_server(x, s, true);
}

void px_exchange_lost(struct px_exchange *x, int err)
{
    px_exchange_release(x, false);
    /* A fresh connection that died before a response byte counts toward
     * passive ejection; a pooled one the backend closed while idle is
     * ordinary keep-alive life. */
    if (!x->u_reused)
        px_health_passive_failure(x->server->backend, err);
    /* The head went out on a connection that then died: the backend may
     * have acted on it. Only a request that is safe to repeat (idempotent,
     * RFC 9110 9.2.2) and whose body did not start goes again; any other
     * gets 502. A connect that failed sent nothing: up_on_connect tries
     * the next server for every request. */
    bool repeatable = x->idempotent && !x->body_sent;
    if (repeatable && x->u_reused && !x->retried_fresh) {
        /* A pooled connection the backend had closed: once more, fresh. */
        x->retried_fresh = true;
        count_retry(x);
        use_server(x, x->server, false);
        return;
    }
    if (repeatable && !x->u_reused) {
        x->last_timeout = false;
        px_exchange_connect(x);
        return;
    }
    px_log_debug("%s: backend %s closed before responding: %s", x->tag, x->server->key,
                 uv_strerror(err));
    x->cbs->fail(x->owner, 502);
}

static void up_on_connect(void *owner, struct px_upstream *u, int status)
{
    struct px_exchange *x = owner;
    (void)u;
    if (status < 0) {
        x->u = NULL;
        x->last_timeout = status == UV_ETIMEDOUT;
        px_health_passive_failure(x->server->backend, status);
        connect_failed(x, status);
        px_exchange_connect(x);
    } else {
        px_alog_upstream_ready(&x->log, x->server);
        x->ready = true;
        x->cbs->ready(x->owner);
    }
    if (x->cbs->connect_done)
        x->cbs->connect_done(x->owner);
}

static void up_on_read(void *owner, struct px_upstream *u, const char *data, ssize_t n)
{
    struct px_exchange *x = owner;
    (void)u;
    if (n > 0)
        px_health_passive_ok(x->server->backend);
    x->cbs->on_read(x->owner, data, n);
}

static void up_on_writable(void *owner, struct px_upstream *u)
{
    struct px_exchange *x = owner;
    (void)u;
    x->cbs->on_writable(x->owner);
}

static const struct px_upstream_cbs up_cbs = {
    .on_connect = up_on_connect,
    .on_read = up_on_read,
    .on_writable = up_on_writable,
};
