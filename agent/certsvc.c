/* The certificate-service client (certsvc.h): libcurl multi-socket on the
 * agent's uv loop, conditional refetches with backoff, the cache. */
#include "agent/certsvc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define N_BUCKETS 4096u
#define MAX_BACKOFF_MS (300u * 1000u)
/* Transfers at once; the others wait in a queue, so that 10,000
 * certificates never hold 10,000 curl handles (each with its buffers) and a
 * transfer's timeout never counts time spent waiting for a turn. */
#define MAX_IN_FLIGHT 64

struct ag_certsvc;

/* One service certificate kept fresh. */
struct entry {
    struct ag_certsvc *cs;
    struct entry *next; /* in its bucket */
    char *service, *id;
    /* The service's settings, copied from the model (it may be freed). */
    char *endpoint, *ca_file, *token_file, *client_cert, *client_key;
    int refresh_s, timeout_s;
    /* What the cache holds. */
    bool cached;
    char version[129];
    time_t not_after;
    /* The schedule and the transfer in flight. */
    uv_timer_t timer;
    CURL *easy;  /* NULL when idle */
    bool queued; /* waiting for a turn (in cs's queue) */
    struct entry *q_prev, *q_next;
    struct curl_slist *headers; /* may hold the token: wiped when freed */
    char *body;                 /* may hold the key: wiped when freed */
    size_t body_len, body_cap;
    bool too_large;
    char curl_err[CURL_ERROR_SIZE];
    /* What /status shows. */
    bool wanted; /* in the last sync */
    unsigned failures;
    enum ag_certsvc_result last;
    bool tried;
    char last_error[256];
    time_t last_success, next_fetch;
};

/* One socket curl asked to watch. */
struct sock {
    uv_poll_t poll;
    struct ag_certsvc *cs;
    curl_socket_t fd;
};

struct ag_certsvc {
    uv_loop_t *loop;
    const char *cache_dir;
    ag_certsvc_change_cb on_change;
    void *arg;
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout */
    struct entry *buckets[N_BUCKETS];
    size_t n_entries;
    size_t in_flight;              /* entries with an easy handle */
    struct entry *q_head, *q_tail; /* waiting for a turn, oldest first */
    uint64_t counts[AG_CS_N_RESULTS];
    time_t last_update; /* wall time of the last new version cached */
    bool closing;
    size_t open_handles; /* closed at the end: free when 0 */
};

static uint64_t key_hash(const char *service, const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = service; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static struct entry **bucket_of(struct ag_certsvc *cs, const char *service, const char *id)
{
    return &cs->buckets[key_hash(service, id) % N_BUCKETS];
}

static void maybe_free(struct ag_certsvc *cs)
{
    if (cs->closing && cs->open_handles == 0) {
        curl_multi_cleanup(cs->multi);
        free(cs);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct ag_certsvc *cs = h->data;
    cs->open_handles--;
    maybe_free(cs);
}

/* ---- freeing what may hold secrets ---- */

static void wipe_body(struct entry *e)
{
    if (e->body) {
        OPENSSL_cleanse(e->body, e->body_cap);
        free(e->body);
    }
    e->body = NULL;
    e->body_len = e->body_cap = 0;
    e->too_large = false;
}

static void free_headers(struct entry *e)
{
    for (struct curl_slist *s = e->headers; s; s = s->next)
        OPENSSL_cleanse(s->data, strlen(s->data));
    curl_slist_free_all(e->headers);
    e->headers = NULL;
}

static void dequeue(struct entry *e)
{
    struct ag_certsvc *cs = e->cs;
    if (!e->queued)
        return;
    if (e->q_prev)
        e->q_prev->q_next = e->q_next;
    else
        cs->q_head = e->q_next;
    if (e->q_next)
        e->q_next->q_prev = e->q_prev;
    else
        cs->q_tail = e->q_prev;
    e->q_prev = e->q_next = NULL;
    e->queued = false;
}

static void enqueue(struct entry *e)
{
    struct ag_certsvc *cs = e->cs;
    if (e->queued)
        return;
    e->queued = true;
    e->q_next = NULL;
    e->q_prev = cs->q_tail;
    if (cs->q_tail)
        cs->q_tail->q_next = e;
    else
        cs->q_head = e;
    cs->q_tail = e;
}

static void end_transfer(struct entry *e)
{
    dequeue(e);
    if (e->easy) {
        curl_multi_remove_handle(e->cs->multi, e->easy);
        curl_easy_cleanup(e->easy);
        e->easy = NULL;
        e->cs->in_flight--;
    }
    free_headers(e);
    wipe_body(e);
}

static void free_settings(struct entry *e)
{
    free(e->endpoint);
    free(e->ca_file);
    free(e->token_file);
    free(e->client_cert);
    free(e->client_key);
    e->endpoint = e->ca_file = e->token_file = e->client_cert = e->client_key = NULL;
}

static void on_entry_closed(uv_handle_t *h)
{
    struct entry *e = h->data;
    struct ag_certsvc *cs = e->cs;
    free_settings(e);
    free(e->service);
    free(e->id);
    free(e);
    cs->open_handles--;
    maybe_free(cs);
}

static void entry_close(struct entry *e)
{
    end_transfer(e);
    uv_close((uv_handle_t *)&e->timer, on_entry_closed);
}

/* ---- the cache ---- */

static int mkdir_0700(const char *path)
{
    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if ((st.st_mode & 077) != 0 && chmod(path, 0700) != 0)
        return -errno;
    return 0;
}

/* mkdir -p of path's parents: those it creates are 0700, existing ones
 * are left as they are. */
static int mkdir_parents(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

/* Writes data to dir/name through a temporary file (0600) and a rename. */
static int write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
    char tmp[4096], final[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name) >= (int)sizeof tmp ||
        snprintf(final, sizeof final, "%s/%s", dir, name) >= (int)sizeof final)
        return -ENAMETOOLONG;
    int fd = mkstemp(tmp); /* 0600 */
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, final) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int entry_dir(const struct entry *e, char *out, size_t size, bool create)
{
    const char *cache = e->cs->cache_dir;
    int rc = 0;
    if (snprintf(out, size, "%s/%s", cache, e->service) >= (int)size)
        return -ENAMETOOLONG;
    if (create && ((rc = mkdir_parents(cache)) != 0 || (rc = mkdir_0700(cache)) != 0 ||
                   (rc = mkdir_0700(out)) != 0))
        return rc;
    if (snprintf(out, size, "%s/%s/%s", cache, e->service, e->id) >= (int)size)
        return -ENAMETOOLONG;
    if (create && (rc = mkdir_0700(out)) != 0)
        return rc;
    return 0;
}

static int cache_write(struct entry *e, const struct ag_cert_reply *r)
{
    char dir[4096];
    int rc = entry_dir(e, dir, sizeof dir, true);
    /* The key first: cert.pem is what says a version is there. All three
     * are written in one callback of the agent's loop, so the reconciler
     * (same loop) never sees a mix of versions. */
    if (rc == 0)
        rc = write_atomic(dir, RC_CERT_CACHE_KEY, r->key_pem, r->key_len);
    if (rc == 0)
        rc = write_atomic(dir, RC_CERT_CACHE_CERT, r->cert_pem, r->cert_len);
    if (rc == 0)
        rc = write_atomic(dir, RC_CERT_CACHE_VERSION, r->version, strlen(r->version));
    if (rc == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return rc;
}

/* What the cache holds for e: its version and the leaf's notAfter. */
static void cache_read(struct entry *e)
{
    char dir[4096], path[4200];
    e->cached = false;
    if (entry_dir(e, dir, sizeof dir, false) != 0)
        return;
    snprintf(path, sizeof path, "%s/%s", dir, RC_CERT_CACHE_CERT);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (x == NULL)
        return;
    struct tm tm;
    e->not_after = ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? timegm(&tm) : 0;
    X509_free(x);
    snprintf(path, sizeof path, "%s/%s", dir, RC_CERT_CACHE_VERSION);
    e->version[0] = '\0';
    if ((f = fopen(path, "r")) != NULL) {
        size_t n = fread(e->version, 1, sizeof e->version - 1, f);
        e->version[n] = '\0';
        e->version[strcspn(e->version, "\r\n\"")] = '\0';
        fclose(f);
    }
    e->cached = true;
}

/* ---- scheduling ---- */

static void on_fetch_timer(uv_timer_t *t);

/* ms scaled by a random factor in [1 - spread, 1 + spread]. */
static uint64_t jitter(uint64_t ms, double spread)
{
    double f = 1.0 - spread + 2.0 * spread * ((double)rand() / RAND_MAX);
    return (uint64_t)((double)ms * f);
}

static void schedule(struct entry *e, uint64_t delay_ms)
{
    e->next_fetch = time(NULL) + (time_t)(delay_ms / 1000);
    uv_timer_start(&e->timer, on_fetch_timer, delay_ms, 0);
}

/* After a success: the refresh interval, sooner when the certificate held
 * is in the last third of its remaining life. */
static uint64_t refresh_delay(const struct entry *e)
{
    uint64_t ms = (uint64_t)e->refresh_s * 1000;
    time_t now = time(NULL);
    if (e->cached && e->not_after > now) {
        uint64_t third = (uint64_t)(e->not_after - now) * 1000 / 3;
        if (third < ms)
            ms = third < 10000 ? 10000 : third;
    }
    return jitter(ms, 0.1);
}

/* After the n-th failure in a row: 1 s, 2 s, 4 s, ... up to the refresh
 * interval (and 5 minutes), +-25 %. */
static uint64_t backoff_delay(const struct entry *e)
{
    uint64_t ms = 1000;
    for (unsigned i = 1; i < e->failures && ms < MAX_BACKOFF_MS; i++)
        ms *= 2;
    uint64_t cap = (uint64_t)e->refresh_s * 1000;
    if (cap > MAX_BACKOFF_MS)
        cap = MAX_BACKOFF_MS;
    if (ms > cap)
        ms = cap;
    return jitter(ms, 0.25);
}

/* ---- one transfer ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct entry *e = arg;
    size_t n = size * nmemb;
    if (e->body_len + n > AG_CERTSVC_MAX_REPLY) {
        e->too_large = true;
        return 0; /* aborts the transfer */
    }
    if (e->body_len + n + 1 > e->body_cap) {
        size_t cap = e->body_cap ? e->body_cap : 16384;
        while (cap < e->body_len + n + 1)
            cap *= 2;
        char *nb = malloc(cap); /* not realloc: the old copy is wiped */
        if (nb == NULL)
            return 0;
        if (e->body) {
            memcpy(nb, e->body, e->body_len);
            OPENSSL_cleanse(e->body, e->body_cap);
            free(e->body);
        }
        e->body = nb;
        e->body_cap = cap;
    }
    memcpy(e->body + e->body_len, data, n);
    e->body_len += n;
    return n;
}

/* The token file's content, white space trimmed, into buf. */
static int read_token(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    int err = errno;
    close(fd);
    if (n < 0)
        return -err;
    buf[n] = '\0';
    size_t a = 0, b = (size_t)n;
    while (a < b && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r' || buf[a] == '\n'))
        a++;
    while (b > a &&
           (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r' || buf[b - 1] == '\n'))
        b--;
    memmove(buf, buf + a, b - a);
    buf[b - a] = '\0';
    return b > a ? 0 : -ENODATA;
}

static void record(struct entry *e, enum ag_certsvc_result r, const char *msg);

static void start_fetch(struct entry *e)
{
    struct ag_certsvc *cs = e->cs;
    if (e->easy || e->queued || cs->closing)
        return;
    if (cs->in_flight >= MAX_IN_FLIGHT) {
        enqueue(e); /* started by next_turn when a transfer ends */
        return;
    }
    char url[4096], line[4096 + 32];
    snprintf(url, sizeof url, "%s/v1/certificates/%s", e->endpoint, e->id);
    e->curl_err[0] = '\0';
    CURL *c = curl_easy_init();
    if (c == NULL) {
        record(e, AG_CS_INTERNAL, "curl_easy_init failed");
        return;
    }
    e->easy = c;
    cs->in_flight++;
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    e->headers = h;
    if (h && e->cached && e->version[0]) {
        snprintf(line, sizeof line, "If-None-Match: \"%s\"", e->version);
        h = curl_slist_append(e->headers, line);
    }
    if (h && e->token_file) {
        char tok[2048];
        int rc = read_token(e->token_file, tok, sizeof tok);
        if (rc != 0) {
            OPENSSL_cleanse(tok, sizeof tok);
            char msg[512];
            snprintf(msg, sizeof msg, "cannot read tokenFile %s: %s", e->token_file,
                     rc == -ENODATA ? "it is empty" : strerror(-rc));
            record(e, AG_CS_INTERNAL, msg);
            return;
        }
        snprintf(line, sizeof line, "Authorization: Bearer %s", tok);
        h = curl_slist_append(e->headers, line);
        OPENSSL_cleanse(tok, sizeof tok);
        OPENSSL_cleanse(line, sizeof line);
    }
    if (h == NULL) {
        record(e, AG_CS_INTERNAL, "out of memory");
        return;
    }
    long timeout_ms = (long)e->timeout_s * 1000;
    CURLcode rc = CURLE_OK;
#define SET(opt, v)                                                                                \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt(c, opt, v)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTPHEADER, e->headers);
    SET(CURLOPT_CAINFO, e->ca_file);
    SET(CURLOPT_CAPATH, (char *)NULL);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_PIPEWAIT, 1L);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    SET(CURLOPT_MAXFILESIZE, (long)AG_CERTSVC_MAX_REPLY);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, e);
    SET(CURLOPT_PRIVATE, e);
    SET(CURLOPT_ERRORBUFFER, e->curl_err);
    if (e->client_cert) {
        SET(CURLOPT_SSLCERT, e->client_cert);
        SET(CURLOPT_SSLKEY, e->client_key);
    }
#undef SET
    if (rc != CURLE_OK || curl_multi_add_handle(cs->multi, c) != CURLM_OK) {
        record(e, AG_CS_INTERNAL,
               rc != CURLE_OK ? curl_easy_strerror(rc) : "curl_multi_add_handle");
        return;
    }
    px_log_debug("certificate service %s: fetching %s", e->service, e->id);
}

static void on_fetch_timer(uv_timer_t *t)
{
    start_fetch(t->data);
}

/* Ends e's transfer with result r (msg: why, for /status), counts it and
 * schedules the next fetch. */
/* Starts waiting transfers while there is room. */
static void next_turn(struct ag_certsvc *cs)
{
    while (!cs->closing && cs->q_head && cs->in_flight < MAX_IN_FLIGHT) {
        struct entry *n = cs->q_head;
        dequeue(n);
        start_fetch(n);
    }
}

static void record(struct entry *e, enum ag_certsvc_result r, const char *msg)
{
    struct ag_certsvc *cs = e->cs;
    end_transfer(e);
    cs->counts[r]++;
    e->last = r;
    e->tried = true;
    if (r == AG_CS_UPDATED || r == AG_CS_UNCHANGED) {
        e->failures = 0;
        e->last_error[0] = '\0';
        e->last_success = time(NULL);
        if (!cs->closing)
            schedule(e, refresh_delay(e));
        return;
    }
    e->failures++;
    snprintf(e->last_error, sizeof e->last_error, "%s", msg);
    if (cs->closing)
        return;
    uint64_t delay = backoff_delay(e);
    schedule(e, delay);
    px_log_warn("certificate service %s: certificate %s: %s (%s); %s; retrying in %.1f s",
                e->service, e->id, ag_certsvc_result_name(r), e->last_error,
                e->cached ? "serving the cached version" : "not cached: its listeners wait",
                (double)delay / 1000);
}

static enum ag_certsvc_result curl_result(CURLcode c, const struct entry *e)
{
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT:
        return AG_CS_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return AG_CS_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
        return AG_CS_TLS;
    case CURLE_FILESIZE_EXCEEDED:
        return AG_CS_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return e->too_large ? AG_CS_TOO_LARGE : AG_CS_INTERNAL;
    default:
        return AG_CS_CONNECTION;
    }
}

static void finish(struct entry *e, CURLcode cres)
{
    struct ag_certsvc *cs = e->cs;
    long code = 0;
    curl_easy_getinfo(e->easy, CURLINFO_RESPONSE_CODE, &code);
    char msg[512];
    if (cres != CURLE_OK) {
        enum ag_certsvc_result r = curl_result(cres, e);
        if (r == AG_CS_TOO_LARGE)
            snprintf(msg, sizeof msg, "the reply is larger than %u bytes", AG_CERTSVC_MAX_REPLY);
        else
            snprintf(msg, sizeof msg, "%s: %s", e->endpoint,
                     e->curl_err[0] ? e->curl_err : curl_easy_strerror(cres));
        record(e, r, msg);
        return;
    }
    if (code == 304 && e->cached) {
        record(e, AG_CS_UNCHANGED, "");
        return;
    }
    if (code != 200) {
        enum ag_certsvc_result r = code == 401                  ? AG_CS_UNAUTHORIZED
                                   : code == 403                ? AG_CS_FORBIDDEN
                                   : code == 404                ? AG_CS_NOT_FOUND
                                   : code >= 500 && code <= 599 ? AG_CS_SERVER_ERROR
                                                                : AG_CS_BAD_STATUS;
        snprintf(msg, sizeof msg, "the service answered HTTP %ld", code);
        record(e, r, msg);
        return;
    }
    struct ag_cert_reply reply;
    enum ag_certsvc_result r = ag_cert_reply_parse(e->body ? e->body : "", e->body_len, e->id,
                                                   time(NULL), &reply, msg, sizeof msg);
    wipe_body(e);
    if (r == AG_CS_UPDATED && e->cached && strcmp(reply.version, e->version) == 0) {
        r = AG_CS_UNCHANGED; /* a service that ignores If-None-Match */
    } else if (r == AG_CS_UPDATED) {
        int wrc = cache_write(e, &reply);
        if (wrc != 0) {
            r = AG_CS_CACHE;
            snprintf(msg, sizeof msg, "cannot write the cache under %s: %s", cs->cache_dir,
                     strerror(-wrc));
        } else {
            e->cached = true;
            snprintf(e->version, sizeof e->version, "%s", reply.version);
            e->not_after = reply.not_after;
            cs->last_update = time(NULL);
            px_log_info("certificate service %s: certificate %s version %s cached", e->service,
                        e->id, e->version);
        }
    }
    ag_cert_reply_cleanup(&reply);
    record(e, r, msg);
    if (r == AG_CS_UPDATED && cs->on_change)
        cs->on_change(cs->arg);
}

static void check_done(struct ag_certsvc *cs)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(cs->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct entry *e = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&e);
        if (e)
            finish(e, m->data.result);
    }
    next_turn(cs);
}

/* ---- curl's sockets and timer on the uv loop ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    struct ag_certsvc *cs = s->cs;
    int flags = status < 0 ? CURL_CSELECT_ERR
                           : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
                                 ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(cs->multi, s->fd, flags, &running);
    check_done(cs);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *s = h->data;
    struct ag_certsvc *cs = s->cs;
    free(s);
    cs->open_handles--;
    maybe_free(cs);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct ag_certsvc *cs = userp;
    struct sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(cs->multi, fd, NULL);
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL)
            return -1;
        if (uv_poll_init_socket(cs->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->cs = cs;
        s->fd = fd;
        cs->open_handles++;
        curl_multi_assign(cs->multi, fd, s);
    }
    int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    struct ag_certsvc *cs = t->data;
    int running;
    curl_multi_socket_action(cs->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(cs);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    struct ag_certsvc *cs = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&cs->timer);
    else
        uv_timer_start(&cs->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- the public side ---- */

int ag_certsvc_start(uv_loop_t *loop, const char *cache_dir, ag_certsvc_change_cb on_change,
                     void *arg, struct ag_certsvc **out)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -ENOMEM;
        global_done = true;
        /* Jitter differs between processes, so that albd replicas
         * restarted together do not refetch in step. */
        srand((unsigned)time(NULL) ^ (unsigned)getpid());
    }
    struct ag_certsvc *cs = calloc(1, sizeof *cs);
    if (cs == NULL)
        return -ENOMEM;
    cs->loop = loop;
    cs->cache_dir = cache_dir;
    cs->on_change = on_change;
    cs->arg = arg;
    cs->multi = curl_multi_init();
    if (cs->multi == NULL) {
        free(cs);
        return -ENOMEM;
    }
    curl_multi_setopt(cs->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(cs->multi, CURLMOPT_SOCKETDATA, cs);
    curl_multi_setopt(cs->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    curl_multi_setopt(cs->multi, CURLMOPT_TIMERDATA, cs);
    curl_multi_setopt(cs->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* 10,000 certificates share a few connections; the rest queue. */
    curl_multi_setopt(cs->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
    curl_multi_setopt(cs->multi, CURLMOPT_MAXCONNECTS, 16L);
    uv_timer_init(loop, &cs->timer);
    cs->timer.data = cs;
    cs->open_handles = 1;
    *out = cs;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool copy_settings(struct entry *e, const struct rc_cert_service *s)
{
    free_settings(e);
    e->endpoint = dup_or_null(s->endpoint);
    e->ca_file = dup_or_null(s->ca_file);
    e->token_file = dup_or_null(s->token_file);
    e->client_cert = dup_or_null(s->client_cert);
    e->client_key = dup_or_null(s->client_key);
    e->refresh_s = s->refresh_s;
    e->timeout_s = s->timeout_s;
    return e->endpoint && (e->ca_file || !s->ca_file) && (e->token_file || !s->token_file) &&
           (e->client_cert || !s->client_cert) && (e->client_key || !s->client_key);
}

void ag_certsvc_sync(struct ag_certsvc *cs, const struct rc_model *m)
{
    if (cs == NULL || cs->closing)
        return;
    for (size_t b = 0; b < N_BUCKETS; b++)
        for (struct entry *e = cs->buckets[b]; e; e = e->next)
            e->wanted = false;
    for (size_t i = 0; m && i < m->n_certificates; i++) {
        const struct rc_certificate *c = m->certificates[i];
        if (c->source != RC_CERT_SOURCE_SERVICE || c->service == NULL || c->service_id == NULL)
            continue;
        const char *svc = c->service->meta.name;
        struct entry **head = bucket_of(cs, svc, c->service_id);
        struct entry *e = *head;
        while (e && (strcmp(e->service, svc) != 0 || strcmp(e->id, c->service_id) != 0))
            e = e->next;
        if (e) {
            e->wanted = true;
            if (!copy_settings(e, c->service))
                px_log_error("certificate service %s: out of memory", svc);
            continue;
        }
        e = calloc(1, sizeof *e);
        if (e == NULL || (e->service = strdup(svc)) == NULL ||
            (e->id = strdup(c->service_id)) == NULL || !copy_settings(e, c->service)) {
            if (e) {
                free_settings(e);
                free(e->service);
                free(e->id);
                free(e);
            }
            px_log_error("certificate service %s: out of memory", svc);
            continue;
        }
        e->cs = cs;
        e->wanted = true;
        uv_timer_init(cs->loop, &e->timer);
        e->timer.data = e;
        cs->open_handles++;
        cache_read(e);
        e->next = *head;
        *head = e;
        cs->n_entries++;
        /* Fetch now: a conditional request when cached (what changed while
         * albd was down), spread a little so 10,000 do not start at once. */
        schedule(e, e->cached ? jitter(500, 1.0) : 0);
    }
    for (size_t b = 0; b < N_BUCKETS; b++) {
        struct entry **pp = &cs->buckets[b];
        while (*pp) {
            struct entry *e = *pp;
            if (e->wanted) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            cs->n_entries--;
            entry_close(e);
        }
    }
    next_turn(cs);
}

void ag_certsvc_refresh(struct ag_certsvc *cs)
{
    for (size_t b = 0; cs && !cs->closing && b < N_BUCKETS; b++)
        for (struct entry *e = cs->buckets[b]; e; e = e->next)
            if (e->easy == NULL) {
                uv_timer_stop(&e->timer);
                start_fetch(e);
            }
}

void ag_certsvc_close(struct ag_certsvc *cs)
{
    if (cs == NULL || cs->closing)
        return;
    cs->closing = true;
    for (size_t b = 0; b < N_BUCKETS; b++) {
        struct entry *e = cs->buckets[b];
        while (e) {
            struct entry *next = e->next;
            entry_close(e);
            e = next;
        }
        cs->buckets[b] = NULL;
    }
    uv_close((uv_handle_t *)&cs->timer, on_handle_closed);
}

static const char *state_of(const struct entry *e)
{
    if (!e->cached)
        return "Pending";
    if (e->failures > 0)
        return "Failing";
    return e->tried ? "Fetched" : "Cached";
}

static void iso(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *ag_certsvc_status(const struct ag_certsvc *cs)
{
    json_t *a = json_array();
    for (size_t b = 0; cs && a && b < N_BUCKETS; b++)
        for (const struct entry *e = cs->buckets[b]; e; e = e->next) {
            char na[32], ls[32], nf[32];
            iso(e->not_after, na);
            iso(e->last_success, ls);
            iso(e->next_fetch, nf);
            json_t *o =
                json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:i}", "service",
                          e->service, "id", e->id, "state", state_of(e), "version",
                          e->cached && e->version[0] ? json_string(e->version) : json_null(),
                          "notAfter", e->cached ? json_string(na) : json_null(), "lastResult",
                          e->tried ? json_string(ag_certsvc_result_name(e->last)) : json_null(),
                          "lastError", e->last_error[0] ? json_string(e->last_error) : json_null(),
                          "lastSuccess", e->last_success ? json_string(ls) : json_null(),
                          "nextFetch", nf, "failures", (int)e->failures);
            json_array_append_new(a, o);
        }
    return a;
}

size_t ag_certsvc_pending(const struct ag_certsvc *cs)
{
    size_t n = 0;
    for (size_t b = 0; cs && b < N_BUCKETS; b++)
        for (const struct entry *e = cs->buckets[b]; e; e = e->next)
            n += !e->cached;
    return n;
}

static int append(char **buf, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int append(char **buf, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    char *nb = realloc(*buf, *len + (size_t)n + 1);
    if (nb == NULL)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(nb + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *buf = nb;
    *len += (size_t)n;
    return 0;
}

int ag_certsvc_metrics(const struct ag_certsvc *cs, char **buf, size_t *len)
{
    int rc = append(buf, len,
                    "# HELP albd_certsvc_fetch_total Certificate-service fetches by result.\n"
                    "# TYPE albd_certsvc_fetch_total counter\n");
    for (int r = 0; rc == 0 && r < AG_CS_N_RESULTS; r++)
        rc = append(buf, len, "albd_certsvc_fetch_total{result=\"%s\"} %llu\n",
                    ag_certsvc_result_name((enum ag_certsvc_result)r),
                    (unsigned long long)(cs ? cs->counts[r] : 0));
    size_t st[4] = {0}; /* Pending, Failing, Fetched, Cached */
    for (size_t b = 0; cs && b < N_BUCKETS; b++)
        for (const struct entry *e = cs->buckets[b]; e; e = e->next) {
            const char *s = state_of(e);
            st[s[0] == 'P' ? 0 : s[0] == 'F' && s[1] == 'a' ? 1 : s[0] == 'F' ? 2 : 3]++;
        }
    if (rc == 0)
        rc = append(buf, len,
                    "# HELP albd_certsvc_certificates Service certificates by state.\n"
                    "# TYPE albd_certsvc_certificates gauge\n"
                    "albd_certsvc_certificates{state=\"pending\"} %zu\n"
                    "albd_certsvc_certificates{state=\"failing\"} %zu\n"
                    "albd_certsvc_certificates{state=\"fetched\"} %zu\n"
                    "albd_certsvc_certificates{state=\"cached\"} %zu\n"
                    "# HELP albd_certsvc_last_update_timestamp_seconds When a new certificate "
                    "version was last cached (0: never).\n"
                    "# TYPE albd_certsvc_last_update_timestamp_seconds gauge\n"
                    "albd_certsvc_last_update_timestamp_seconds %lld\n",
                    st[0], st[1], st[2], st[3], (long long)(cs ? cs->last_update : 0));
    return rc;
}
