/* proxy/tls_io.c: records OpenSSL reads straight from a lent buffer, and
 * what it left unread there survives the buffer (px_tls_io_unlend keeps a
 * copy), in order with what comes after; what a session writes reaches its
 * sink record by record; a parked session holds nothing it kept, and a
 * trim drops only a copy whose bytes were all read. A client
 * and a server session talk in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/tls_io.h"

struct sink {
    char buf[1 << 16];
    size_t len;
    unsigned calls;
};

static int sink_append(void *arg, const char *data, size_t n)
{
    struct sink *s = arg;
    assert_true(s->len + n <= sizeof s->buf);
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->calls++;
    return 0;
}

struct fixture {
    SSL_CTX *server, *client;
    struct px_tls_io *s, *c; /* server with a sink, client with a memory BIO */
    struct sink out;         /* what the server wrote */
};

static void load(SSL_CTX *ctx, const char *cert, const char *key)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/certs/%s", ALBD_TEST_DATA, cert);
    assert_int_equal(SSL_CTX_use_certificate_file(ctx, path, SSL_FILETYPE_PEM), 1);
    snprintf(path, sizeof path, "%s/certs/%s", ALBD_TEST_DATA, key);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
}

/* Client bytes go to the server through a scratch buffer that is lent,
 * unlent and then scribbled over, as a connection's read buffer is. */
static void client_to_server(struct fixture *f)
{
    static char scratch[1 << 16];
    size_t n = px_tls_io_take(f->c, scratch, sizeof scratch);
    if (n == 0)
        return;
    assert_int_equal(px_tls_io_lend(f->s, scratch, n), 0);
    px_tls_io_handshake(f->s);
    assert_int_equal(px_tls_io_unlend(f->s), 0);
    memset(scratch, 0xAA, sizeof scratch);
}

static void server_to_client(struct fixture *f)
{
    assert_int_equal(px_tls_io_feed(f->c, f->out.buf, f->out.len), 0);
    f->out.len = 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->server = SSL_CTX_new(TLS_server_method());
    f->client = SSL_CTX_new(TLS_client_method());
    assert_non_null(f->server);
    assert_non_null(f->client);
    load(f->server, "test-only-server.pem", "test-only-server.key");
    SSL_CTX_set_num_tickets(f->server, 0); /* no post-handshake record */
    f->s = px_tls_io_new(f->server, sink_append, &f->out);
    f->c = px_tls_io_new(f->client, NULL, NULL);
    assert_non_null(f->s);
    assert_non_null(f->c);
    SSL_set_connect_state(px_tls_io_ssl(f->c));
    int cr = 0, sr = 0;
    for (int i = 0; i < 10 && (cr != 1 || sr != 1); i++) {
        cr = px_tls_io_handshake(f->c);
        client_to_server(f);
        sr = px_tls_io_handshake(f->s);
        server_to_client(f);
    }
    assert_int_equal(cr, 1);
    assert_int_equal(sr, 1);
    assert_int_equal(px_tls_io_in_pending(f->s), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    px_tls_io_free(f->s);
    px_tls_io_free(f->c);
    SSL_CTX_free(f->server);
    SSL_CTX_free(f->client);
    free(f);
    return 0;
}

/* The client's records for each of words, one record each, in one buffer. */
static size_t records(struct fixture *f, char *wire, size_t cap, const char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(px_tls_io_write(f->c, words[i], strlen(words[i])), 0);
    size_t len = px_tls_io_take(f->c, wire, cap);
    assert_true(len > 0);
    return len;
}

static void expect_read(struct px_tls_io *t, const char *want)
{
    char got[64];
    ssize_t n = px_tls_io_read(t, got, sizeof got);
    assert_int_equal(n, (ssize_t)strlen(want));
    assert_memory_equal(got, want, strlen(want));
}

static void unread_records_outlive_the_lent_buffer(void **state)
{
    struct fixture *f = *state;
    char wire[4096];
    const char *words[] = {"first", "second"};
    size_t len = records(f, wire, sizeof wire, words, 2);
    assert_int_equal(px_tls_io_lend(f->s, wire, len), 0);
    assert_int_equal(px_tls_io_in_pending(f->s), len);
    expect_read(f->s, "first"); /* one record; the second stays in wire */
    size_t left = px_tls_io_in_pending(f->s);
    assert_true(left > 0 && left < len);
    assert_int_equal(px_tls_io_unlend(f->s), 0);
    memset(wire, 0xAA, sizeof wire); /* the read buffer is reused */
    assert_int_equal(px_tls_io_in_pending(f->s), left);
    expect_read(f->s, "second");
    assert_int_equal(px_tls_io_in_pending(f->s), 0);
    char got[16];
    assert_int_equal(px_tls_io_read(f->s, got, sizeof got), 0); /* wants more */
}

static void later_bytes_queue_behind_kept_ones(void **state)
{
    struct fixture *f = *state;
    char wire[4096], more[4096];
    const char *words[] = {"one", "two"};
    size_t len = records(f, wire, sizeof wire, words, 2);
    assert_int_equal(px_tls_io_lend(f->s, wire, len), 0);
    expect_read(f->s, "one");
    assert_int_equal(px_tls_io_unlend(f->s), 0); /* "two" kept */
    memset(wire, 0xAA, sizeof wire);
    const char *three[] = {"three"};
    size_t len2 = records(f, more, sizeof more, three, 1);
    /* Lent while older bytes wait: copied behind them. */
    assert_int_equal(px_tls_io_lend(f->s, more, len2), 0);
    memset(more, 0xAA, sizeof more);
    expect_read(f->s, "two");
    expect_read(f->s, "three");
    assert_int_equal(px_tls_io_unlend(f->s), 0);
    assert_int_equal(px_tls_io_in_pending(f->s), 0);
}

static void writes_reach_the_sink(void **state)
{
    struct fixture *f = *state;
    unsigned calls = f->out.calls;
    assert_int_equal(px_tls_io_write(f->s, "hello", 5), 0);
    assert_true(f->out.calls > calls);
    assert_true(f->out.len > 5);                      /* a record: header, text, tag */
    assert_int_equal(px_tls_io_out_pending(f->s), 0); /* nothing waits inside */
    server_to_client(f);
    expect_read(f->c, "hello");
}

static void a_parked_session_keeps_nothing(void **state)
{
    struct fixture *f = *state;
    char wire[4096];
    const char *words[] = {"a", "b"};
    size_t len = records(f, wire, sizeof wire, words, 2);
    assert_int_equal(px_tls_io_lend(f->s, wire, len), 0);
    expect_read(f->s, "a");
    assert_int_equal(px_tls_io_unlend(f->s), 0);
    assert_false(px_tls_io_park(f->s)); /* "b" is still kept */
    expect_read(f->s, "b");
    assert_true(px_tls_io_park(f->s));
    assert_int_equal(px_tls_io_in_pending(f->s), 0);
    /* And it works on after parking. */
    const char *c[] = {"c"};
    len = records(f, wire, sizeof wire, c, 1);
    assert_int_equal(px_tls_io_lend(f->s, wire, len), 0);
    expect_read(f->s, "c");
    assert_int_equal(px_tls_io_unlend(f->s), 0);
}

/* px_tls_io_trim (after a deferred ClientHello was read from its copy)
 * drops the copy only once nothing in it waits: bytes still unread stay. */
static void trim_keeps_unread_bytes(void **state)
{
    struct fixture *f = *state;
    char wire[4096];
    const char *words[] = {"fed", "kept"};
    size_t len = records(f, wire, sizeof wire, words, 2);
    assert_int_equal(px_tls_io_feed(f->s, wire, len), 0); /* copied, as a queued ClientHello */
    memset(wire, 0xAA, sizeof wire);
    expect_read(f->s, "fed");
    size_t left = px_tls_io_in_pending(f->s);
    assert_true(left > 0);
    px_tls_io_trim(f->s);
    assert_int_equal(px_tls_io_in_pending(f->s), left);
    expect_read(f->s, "kept");
    px_tls_io_trim(f->s); /* all read: the copy goes */
    assert_int_equal(px_tls_io_in_pending(f->s), 0);
    /* New bytes after the trim are read as before. */
    const char *more[] = {"more"};
    len = records(f, wire, sizeof wire, more, 1);
    assert_int_equal(px_tls_io_feed(f->s, wire, len), 0);
    expect_read(f->s, "more");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unread_records_outlive_the_lent_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(later_bytes_queue_behind_kept_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(writes_reach_the_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(a_parked_session_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(trim_keeps_unread_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
