/* agent/http_get.c: a GET against canned answers of a loopback server:
 * Content-Length, chunked, read to the close; non-2xx, cut-short and
 * oversized answers, a refused connection, a server that never answers,
 * and URLs it does not take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/http_get.h"

struct server {
    int lfd;
    unsigned short port;
    const char *answer; /* sent after the request head; NULL: say nothing */
    char request[2048];
    pthread_t thread;
};

static void *serve_one(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    while (n < sizeof s->request - 1 && !strstr(s->request, "\r\n\r\n")) {
        ssize_t r = recv(fd, s->request + n, sizeof s->request - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        s->request[n] = '\0';
    }
    if (s->answer)
        (void)!send(fd, s->answer, strlen(s->answer), MSG_NOSIGNAL);
    else
        usleep(600 * 1000); /* longer than the client's timeout */
    close(fd);
    return NULL;
}

static void start(struct server *s, const char *answer)
{
    memset(s, 0, sizeof *s);
    s->answer = answer;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    socklen_t l = sizeof sa;
    getsockname(s->lfd, (struct sockaddr *)&sa, &l);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void finish(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* GETs /config from a server answering answer; returns the client's result. */
static int get(const char *answer, size_t max, char **body, size_t *len, char *err, size_t errlen,
               struct server *s)
{
    start(s, answer);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/config", s->port);
    int rc = ag_http_get(url, max, 300, body, len, err, errlen);
    finish(s);
    return rc;
}

static void reads_bodies_by_length_chunks_and_close(void **state)
{
    struct server s;
    char *body;
    size_t len;
    char err[256];
    assert_int_equal(get("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{\"a\"}",
                         1000, &body, &len, err, sizeof err, &s),
                     0);
    assert_int_equal(len, 5);
    assert_string_equal(body, "{\"a\"}");
    free(body);
    assert_non_null(strstr(s.request, "GET /config HTTP/1.1\r\n"));
    assert_non_null(strstr(s.request, "\r\nHost: 127.0.0.1:"));
    assert_non_null(strstr(s.request, "\r\nConnection: close\r\n"));

    assert_int_equal(get("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3\r\n{\"b\r\n2;x=y\r\n\"}\r\n0\r\n\r\n",
                         1000, &body, &len, err, sizeof err, &s),
                     0);
    assert_string_equal(body, "{\"b\"}");
    assert_int_equal(len, 5);
    free(body);

    assert_int_equal(get("HTTP/1.0 200 OK\r\n\r\n[1,2]", 1000, &body, &len, err, sizeof err, &s),
                     0);
    assert_string_equal(body, "[1,2]");
    free(body);
}

static void refuses_what_is_not_a_whole_2xx_answer(void **state)
{
    struct server s;
    char *body = NULL;
    size_t len;
    char err[256];
    assert_int_equal(get("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n", 1000, &body,
                         &len, err, sizeof err, &s),
                     -1);
    assert_non_null(strstr(err, "HTTP 404"));
    assert_null(body);
    assert_int_equal(get("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 1000, &body, &len,
                         err, sizeof err, &s),
                     -1);
    assert_non_null(strstr(err, "cut short"));
    assert_int_equal(get("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1000,
                         &body, &len, err, sizeof err, &s),
                     -1);
    assert_non_null(strstr(err, "chunked"));
    assert_int_equal(get("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789", 10,
                         &body, &len, err, sizeof err, &s),
                     -1);
    assert_non_null(strstr(err, "larger than 10 bytes"));
    assert_int_equal(get("SSH-2.0-OpenSSH\r\n\r\n", 1000, &body, &len, err, sizeof err, &s), -1);
    assert_non_null(strstr(err, "HTTP/1.x"));
    assert_int_equal(get(NULL, 1000, &body, &len, err, sizeof err, &s), -1); /* never answers */
    assert_non_null(strstr(err, "timed out"));
    assert_null(body);
}

static void refused_connections_and_bad_urls_are_errors(void **state)
{
    struct server s;
    start(&s, "HTTP/1.1 200 OK\r\n\r\n");
    unsigned short port = s.port;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/config", port);
    char *body = NULL;
    size_t len;
    char err[256];
    assert_int_equal(ag_http_get(url, 10, 1000, &body, &len, err, sizeof err), 0);
    free(body);
    finish(&s); /* the port is closed now */
    assert_int_equal(ag_http_get(url, 10, 1000, &body, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot connect"));
    static const char *const bad[] = {"ftp://127.0.0.1/",    "http://",
                                      "http://[::1/x",       "http://127.0.0.1:99999/",
                                      "http://u@127.0.0.1/", "http://127.0.0.1:80x/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(ag_http_get(bad[i], 10, 1000, &body, &len, err, sizeof err), -1);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_bodies_by_length_chunks_and_close),
        cmocka_unit_test(refuses_what_is_not_a_whole_2xx_answer),
        cmocka_unit_test(refused_connections_and_bad_urls_are_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
