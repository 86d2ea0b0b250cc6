/* Client <-> backend byte splice (see tunnel.h). */
#include "proxy/tunnel.h"

#include <errno.h>
#include <stdlib.h>

#include "proxy/upstream.h"

struct px_tunnel {
    struct px_upstream *u;
    const struct px_tunnel_client *client;
    void *ctx;
    bool client_eof;    /* the client sent its FIN: backend write side shut */
    bool backend_eof;   /* the backend sent its FIN: client write side shut */
    bool ended;         /* done was called */
    bool up_paused;     /* backend reading stopped for client backpressure */
    bool client_paused; /* client input stopped for backend backpressure */
};

static const struct px_upstream_cbs tunnel_up_cbs;

/* Reports the end once; the owner may free t inside done. */
static void end(struct px_tunnel *t, int err)
{
    if (t->ended)
        return;
    t->ended = true;
    t->client->done(t->ctx, err);
}

struct px_tunnel *px_tunnel_new(struct px_upstream *u, const struct px_tunnel_client *client,
                                void *ctx)
{
    struct px_tunnel *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->u = u;
    t->client = client;
    t->ctx = ctx;
    px_upstream_set_owner(u, &tunnel_up_cbs, t);
    px_upstream_read(u, true);
    return t;
}

void px_tunnel_free(struct px_tunnel *t)
{
    if (!t)
        return;
    if (t->u)
        px_upstream_release(t->u, false);
    free(t);
}

size_t px_tunnel_client_data(struct px_tunnel *t, const char *data, size_t len)
{
    if (t->ended || t->client_eof)
        return 0;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = px_upstream_write(t->u, &b, 1);
    if (rc < 0) {
        end(t, rc);
        return 0;
    }
    t->client->activity(t->ctx);
    if (px_upstream_congested(t->u) && !t->client_paused) {
        t->client_paused = true;
        t->client->want_input(t->ctx, false);
    }
    return len;
}

void px_tunnel_client_eof(struct px_tunnel *t)
{
    if (t->ended || t->client_eof)
        return;
    t->client_eof = true;
    if (t->backend_eof) {
        end(t, 0);
        return;
    }
    int rc = px_upstream_shutdown(t->u);
    if (rc < 0)
        end(t, rc);
}

void px_tunnel_client_writable(struct px_tunnel *t)
{
    if (t->ended || !t->up_paused || t->backend_eof)
        return;
    t->up_paused = false;
    px_upstream_read(t->u, true);
}

static void up_on_read(void *owner, struct px_upstream *u, const char *data, ssize_t n)
{
    struct px_tunnel *t = owner;
    if (t->ended)
        return;
    if (n == UV_EOF) {
        t->backend_eof = true;
        if (t->client_eof) {
            end(t, 0);
            return;
        }
        t->client->shutdown(t->ctx);
        return;
    }
    if (n < 0) {
        end(t, (int)n);
        return;
    }
    if (t->client->write(t->ctx, data, (size_t)n) < 0) {
        end(t, -EPIPE);
        return;
    }
    t->client->activity(t->ctx);
    if (t->client->congested(t->ctx)) {
        t->up_paused = true;
        px_upstream_read(u, false);
    }
}

static void up_on_writable(void *owner, struct px_upstream *u)
{
    struct px_tunnel *t = owner;
    if (t->ended || !t->client_paused)
        return;
    t->client_paused = false;
    t->client->want_input(t->ctx, true);
}

static void up_on_connect(void *owner, struct px_upstream *u, int status)
{
    /* A tunnel starts on a connected backend: never called. */
}

static const struct px_upstream_cbs tunnel_up_cbs = {
    .on_connect = up_on_connect,
    .on_read = up_on_read,
    .on_writable = up_on_writable,
};
