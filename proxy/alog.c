/* The access log: sinks with a writer thread each, and per-request records
 * formatted as JSON lines (see alog.h). */
#include "proxy/alog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "proxy/headers.h"
#include "proxy/obs.h"

/* One worker's lines waiting for the writer. */
struct slot {
    pthread_mutex_t mu;
    char *buf; /* PX_ALOG_SLOT_BYTES */
    size_t len;
    uint64_t lines;
};

struct px_alog_sink {
    char *path;
    int fd;       /* -1 while it cannot be opened */
    bool regular; /* a regular file: write whole buffers; else poll, then PIPE_BUF at a time */
    int refs;     /* guarded by reg_mu */
    int n_slots;
    struct slot *slots;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop, reopen; with cond, the writer's sleep */
    pthread_cond_t cond;
    bool stop, reopen;
    atomic_bool kicked; /* a slot passed a quarter full: the writer was woken */
    bool failing;       /* the last write failed: warned once until one succeeds */
    struct px_alog_sink *next;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cond = PTHREAD_COND_INITIALIZER;
static struct px_alog_sink *reg_head; /* live sinks (refs > 0) */
static int reg_writers;               /* writer threads not finished yet */
static atomic_uint_fast64_t dropped_total, lines_total;

/* --- the writer --------------------------------------------------------- */

static int open_path(const char *path, bool *regular)
{
    int fd;
    if (strcmp(path, "-") == 0)
        fd = dup(STDOUT_FILENO);
    else
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0640);
    if (fd < 0)
        return -errno;
    struct stat st;
    *regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    return fd;
}

static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        k++;
    return k;
}

static bool stopping(struct px_alog_sink *s)
{
    pthread_mutex_lock(&s->mu);
    bool st = s->stop;
    pthread_mutex_unlock(&s->mu);
    return st;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Writes n bytes holding lines lines; what cannot be written (an error, or
 * a destination still blocked a second after the sink was stopped) is
 * dropped and counted. */
static void write_out(struct px_alog_sink *s, const char *p, size_t n, uint64_t lines)
{
    uint64_t stop_deadline = 0;
    size_t off = 0;
    while (off < n) {
        if (s->fd < 0)
            break;
        if (!s->regular) {
            struct pollfd pf = {.fd = s->fd, .events = POLLOUT};
            int pr = poll(&pf, 1, 100);
            if (pr == 0 || (pr < 0 && errno == EINTR)) {
                if (stopping(s)) {
                    if (!stop_deadline)
                        stop_deadline = now_ms() + 1000;
                    else if (now_ms() > stop_deadline)
                        break;
                }
                continue;
            }
        }
        size_t chunk = n - off;
        if (!s->regular && chunk > PIPE_BUF)
            chunk = PIPE_BUF;
        ssize_t w = write(s->fd, p + off, chunk);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (!s->failing)
            px_log_warn("access log %s: %s: dropping lines until a write succeeds", s->path,
                        w < 0 ? strerror(errno) : "short write");
        s->failing = true;
        break;
    }
    uint64_t lost = off < n ? count_lines(p + off, n - off) : 0;
    if (off == n && s->failing) {
        s->failing = false;
        px_log_info("access log %s: writing again", s->path);
    }
    if (lost)
        atomic_fetch_add_explicit(&dropped_total, lost, memory_order_relaxed);
    atomic_fetch_add_explicit(&lines_total, lines - lost, memory_order_relaxed);
}

static void reopen(struct px_alog_sink *s)
{
    bool regular = false;
    int fd = open_path(s->path, &regular);
    if (fd < 0) {
        px_log_warn("access log %s: cannot reopen: %s (keeping the old file)", s->path,
                    strerror(-fd));
        return;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = fd;
    s->regular = regular;
}

static void sink_free(struct px_alog_sink *s)
{
    for (int i = 0; i < s->n_slots; i++) {
        pthread_mutex_destroy(&s->slots[i].mu);
        free(s->slots[i].buf);
    }
    free(s->slots);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    free(s);
}

static void *writer_main(void *arg)
{
    struct px_alog_sink *s = arg;
    char *spare = malloc(PX_ALOG_SLOT_BYTES);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (!s->stop && !atomic_load_explicit(&s->kicked, memory_order_relaxed)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cond, &s->mu, &ts);
        }
        atomic_store_explicit(&s->kicked, false, memory_order_relaxed);
        bool stop = s->stop, re = s->reopen;
        s->reopen = false;
        pthread_mutex_unlock(&s->mu);
        /* On SIGUSR1 the lines logged so far still go to the file being
         * rotated away; the reopened one gets the lines after them. */
        for (int i = 0; i < s->n_slots; i++) {
            struct slot *sl = &s->slots[i];
            pthread_mutex_lock(&sl->mu);
            size_t n = sl->len;
            uint64_t lines = sl->lines;
            if (n && spare) {
                char *t = sl->buf;
                sl->buf = spare;
                spare = t;
                sl->len = 0;
                sl->lines = 0;
            }
            pthread_mutex_unlock(&sl->mu);
            if (n && spare)
                write_out(s, spare, n, lines);
        }
        if (re)
            reopen(s);
        if (stop)
            break;
    }
    free(spare);
    sink_free(s);
    pthread_mutex_lock(&reg_mu);
    reg_writers--;
    pthread_cond_broadcast(&reg_cond);
    pthread_mutex_unlock(&reg_mu);
    return NULL;
}

/* --- sinks -------------------------------------------------------------- */

int px_alog_sink_get(const char *path, int n_workers, struct px_alog_sink **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    pthread_mutex_lock(&reg_mu);
    for (struct px_alog_sink *s = reg_head; s; s = s->next)
        if (strcmp(s->path, path) == 0 && s->n_slots >= n_workers) {
            s->refs++;
            pthread_mutex_unlock(&reg_mu);
            *out = s;
            return 0;
        }
    pthread_mutex_unlock(&reg_mu);

    struct px_alog_sink *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->fd = -1;
    s->path = strdup(path);
    s->slots = calloc((size_t)n_workers, sizeof *s->slots);
    if (!s->path || !s->slots) {
        free(s->path);
        free(s->slots);
        free(s);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->n_slots = n_workers;
    int rc = 0;
    for (int i = 0; i < n_workers; i++) {
        pthread_mutex_init(&s->slots[i].mu, NULL);
        if (!(s->slots[i].buf = malloc(PX_ALOG_SLOT_BYTES)))
            rc = -ENOMEM;
    }
    if (rc == 0) {
        s->fd = open_path(path, &s->regular);
        if (s->fd < 0) {
            rc = s->fd;
            snprintf(err, errlen, "access log %s: %s", path,
                     rc == -ENXIO ? "a FIFO nobody reads" : strerror(-rc));
        }
    } else {
        snprintf(err, errlen, "out of memory");
    }
    s->refs = 1;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (rc == 0 && pthread_create(&s->thread, &at, writer_main, s) != 0) {
        rc = -EAGAIN;
        snprintf(err, errlen, "access log %s: cannot start its writer thread", path);
    }
    pthread_attr_destroy(&at);
    if (rc != 0) {
        sink_free(s);
        return rc;
    }
    pthread_mutex_lock(&reg_mu);
    reg_writers++;
    s->next = reg_head;
    reg_head = s;
    pthread_mutex_unlock(&reg_mu);
    *out = s;
    return 0;
}

static void kick(struct px_alog_sink *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store_explicit(&s->kicked, true, memory_order_relaxed);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

void px_alog_sink_unref(struct px_alog_sink *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&reg_mu);
    bool last = --s->refs == 0;
    if (last)
        for (struct px_alog_sink **p = &reg_head; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
    pthread_mutex_unlock(&reg_mu);
    if (!last)
        return;
    /* The writer frees s once it has written what is left. */
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

void px_alog_reopen_all(void)
{
    pthread_mutex_lock(&reg_mu);
    for (struct px_alog_sink *s = reg_head; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        s->reopen = true;
        pthread_mutex_unlock(&s->mu);
        kick(s);
    }
    pthread_mutex_unlock(&reg_mu);
}

void px_alog_shutdown(unsigned wait_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&reg_mu);
    while (reg_writers > 0)
        if (pthread_cond_timedwait(&reg_cond, &reg_mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&reg_mu);
}

uint64_t px_alog_dropped_total(void)
{
    return atomic_load_explicit(&dropped_total, memory_order_relaxed);
}

uint64_t px_alog_lines_total(void)
{
    return atomic_load_explicit(&lines_total, memory_order_relaxed);
}

/* Worker side: copies one finished line into the worker's slot, or counts
 * it dropped when the slot is full. */
static void sink_put(struct px_alog_sink *s, int wid, const char *line, size_t n)
{
    if (wid < 0 || wid >= s->n_slots) {
        atomic_fetch_add_explicit(&dropped_total, 1, memory_order_relaxed);
        return;
    }
    struct slot *sl = &s->slots[wid];
    pthread_mutex_lock(&sl->mu);
    bool fits = sl->len + n <= PX_ALOG_SLOT_BYTES;
    if (fits) {
        memcpy(sl->buf + sl->len, line, n);
        sl->len += n;
        sl->lines++;
    }
    bool wake = sl->len >= PX_ALOG_SLOT_BYTES / 4;
    pthread_mutex_unlock(&sl->mu);
    if (!fits)
        atomic_fetch_add_explicit(&dropped_total, 1, memory_order_relaxed);
    if (wake && !atomic_exchange_explicit(&s->kicked, true, memory_order_relaxed)) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mu);
    }
}

/* --- records ------------------------------------------------------------ */

static bool grow(struct px_alog_rec *rec, size_t more)
{
    if (!rec->line)
        return false;
    if (rec->len + more <= rec->cap)
        return true;
    size_t cap = rec->cap * 2;
    while (cap < rec->len + more)
        cap *= 2;
    char *p = realloc(rec->line, cap);
    if (!p) {
        /* The line is lost (counted at its end): never a half line. */
        free(rec->line);
        rec->line = NULL;
        return false;
    }
    rec->line = p;
    rec->cap = cap;
    return true;
}

static void put(struct px_alog_rec *rec, const char *s, size_t n)
{
    if (!grow(rec, n))
        return;
    memcpy(rec->line + rec->len, s, n);
    rec->len += n;
}

static void puts_(struct px_alog_rec *rec, const char *s)
{
    put(rec, s, strlen(s));
}

static void putf(struct px_alog_rec *rec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void putf(struct px_alog_rec *rec, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(rec, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if
 * invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t k;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, min = 0x10000;
    else
        return 0;
    if (n < k)
        return 0;
    unsigned v = c & (0x3f >> (k - 1));
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    return k;
}

/* A JSON string: quotes, backslashes and control bytes escaped, invalid
 * UTF-8 replaced by U+FFFD, so that every line parses whatever the client
 * sent. */
static void put_str(struct px_alog_rec *rec, const char *s, size_t n)
{
    if (!grow(rec, n + 2))
        return;
    rec->line[rec->len++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            put(rec, s + i, run - i);
            i = run;
            continue;
        }
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(rec, e, 2);
            i++;
        } else if (c < 0x80) {
            putf(rec, "\\u%04x", c);
            i++;
        } else {
            size_t k = utf8_len(p + i, n - i);
            if (k) {
                put(rec, s + i, k);
                i += k;
            } else {
                puts_(rec, "\\ufffd");
                i++;
            }
        }
    }
    put(rec, "\"", 1);
}

static void field_str(struct px_alog_rec *rec, const char *name, const char *v, size_t n)
{
    /* ,"name": without printf: the line is built for every logged request. */
    put(rec, ",\"", 2);
    puts_(rec, name);
    put(rec, "\":", 2);
    if (v)
        put_str(rec, v, n);
    else
        puts_(rec, "null");
}

static void field_cstr(struct px_alog_rec *rec, const char *name, const char *v)
{
    field_str(rec, name, v, v ? strlen(v) : 0);
}

static void field_secs(struct px_alog_rec *rec, const char *name, uint64_t from, uint64_t to)
{
    if (!to || to < from)
        putf(rec, ",\"%s\":null", name);
    else
        putf(rec, ",\"%s\":%.6f", name, (double)(to - from) / 1e9);
}

/* The request's header value named name (the first), or NULL. */
static const struct px_hdr *find_hdr(const struct px_req *r, const char *name)
{
    size_t l = strlen(name);
    for (size_t i = 0; i < r->n_hdrs; i++)
        if (r->hdrs[i].name_len == l && strncasecmp(r->hdrs[i].name, name, l) == 0)
            return &r->hdrs[i];
    return NULL;
}

/* "2026-12-06T06:08:35.123Z" for now; the date part is cached per second
 * and thread. */
static void put_ts(struct px_alog_rec *rec)
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[24];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    putf(rec, "{\"ts\":\"%s.%03ldZ\"", cached, ts.tv_nsec / 1000000);
}

void px_alog_begin(struct px_alog_rec *rec, const struct px_listener *lis, int wid,
                   const struct px_client *cl, const char *http_version, const struct px_req *r)
{
    if (rec->on || !lis)
        return;
    *rec = (struct px_alog_rec){
        .on = true, .ls = lis->obs_slot, .gs = -1, .ss = -1, .wid = wid, .t0 = uv_hrtime()};
    if (!lis->alog)
        return; /* metrics only */
    rec->sink = lis->alog;
    rec->cap = 1024;
    rec->line = malloc(rec->cap);
    if (!rec->line)
        return; /* counted dropped at the end */
    rec->sample2xx = lis->model->access_log.sample2xx;
    put_ts(rec);
    field_cstr(rec, "client_ip", r ? r->client_ip : cl ? cl->ip : NULL);
    const char *port = cl ? cl->port : NULL;
    char *end = NULL;
    long pn = port ? strtol(port, &end, 10) : 0;
    if (port && *port && end && *end == '\0')
        putf(rec, ",\"client_port\":%ld", pn);
    else
        puts_(rec, ",\"client_port\":null");
    field_cstr(rec, "listener", lis->model->meta.name);
    field_cstr(rec, "sni", cl ? cl->sni : NULL);
    field_cstr(rec, "tls_version", cl ? cl->tls_version : NULL);
    field_cstr(rec, "tls_cipher", cl ? cl->tls_cipher : NULL);
    field_cstr(rec, "http_version", http_version);
    if (!r) {
        puts_(rec, ",\"method\":null,\"host\":null,\"path\":null,\"query\":null,"
                   "\"user_agent\":null,\"referer\":null");
        return;
    }
    field_cstr(rec, "method", r->method);
    field_str(rec, "host", r->authority, r->authority_len);
    size_t plen = r->query ? (size_t)(r->query - 1 - r->path) : r->path_len;
    if (r->path_slash)
        field_str(rec, "path", "/", 1);
    else
        field_str(rec, "path", r->path, plen);
    field_str(rec, "query", r->query, r->query_len);
    const struct px_hdr *ua = find_hdr(r, "user-agent"), *ref = find_hdr(r, "referer");
    field_str(rec, "user_agent", ua ? ua->value : NULL, ua ? ua->value_len : 0);
    field_str(rec, "referer", ref ? ref->value : NULL, ref ? ref->value_len : 0);
}

void px_alog_request_id(struct px_alog_rec *rec, const char *id)
{
    if (!rec->line || rec->has_id)
        return;
    rec->has_id = true;
    field_cstr(rec, "request_id", id);
}

void px_alog_group(struct px_alog_rec *rec, const struct px_group *g)
{
    if (!rec->on || rec->has_group)
        return;
    rec->has_group = true;
    rec->gs = g ? g->obs_slot : -1;
    if (rec->line)
        field_cstr(rec, "server_group", g ? g->model->meta.name : NULL);
}

void px_alog_rule(struct px_alog_rec *rec, const char *name)
{
    if (!rec->on || rec->has_rule)
        return;
    rec->has_rule = true;
    if (rec->line)
        field_cstr(rec, "rule", name);
}

void px_alog_upstream_ready(struct px_alog_rec *rec, const struct px_server *s)
{
    if (!rec->on)
        return;
    rec->t_connect = uv_hrtime();
    rec->ss = s->obs_slot;
    if (rec->line)
        snprintf(rec->upstream, sizeof rec->upstream, "%s", s->key);
}

void px_alog_upstream_head(struct px_alog_rec *rec, int status)
{
    if (!rec->on || rec->upstream_status)
        return;
    rec->upstream_status = status;
    rec->t_first = uv_hrtime();
}

void px_alog_upstream_end(struct px_alog_rec *rec)
{
    if (rec->on && rec->t_first && !rec->t_up_end)
        rec->t_up_end = uv_hrtime();
}

void px_alog_hold(struct px_alog_rec *rec)
{
    if (!rec->sink || rec->held)
        return;
    pthread_mutex_lock(&reg_mu);
    rec->sink->refs++;
    pthread_mutex_unlock(&reg_mu);
    rec->held = true;
}

void px_alog_discard(struct px_alog_rec *rec)
{
    if (rec->held)
        px_alog_sink_unref(rec->sink);
    free(rec->line);
    *rec = (struct px_alog_rec){0};
}

/* Sampling of 1xx-3xx lines: a per-thread xorshift generator (the choice
 * needs no quality beyond an even spread). */
static bool keep_line(double share)
{
    static _Thread_local uint64_t x;
    if (share >= 1.0)
        return true;
    if (share <= 0.0)
        return false;
    if (!x)
        x = uv_hrtime() ^ (uint64_t)(uintptr_t)&x ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (double)(x >> 11) / 9007199254740992.0 < share;
}

/* The request's metrics (proxy/obs.h), on its worker's block. */
static void count(const struct px_alog_rec *rec, int status, const char *reason, uint64_t now)
{
    struct px_obs_worker *b = px_obs_worker(rec->wid);
    if (!b || rec->ls < 0 || rec->ls >= PX_OBS_LISTENERS)
        return;
    struct px_obs_listener *l = &b->lis[rec->ls];
    px_obs_add(&l->requests, 1);
    int cls = status / 100;
    px_obs_add(&l->responses[cls >= 1 && cls <= 5 ? cls : 0], 1);
    int ri = px_obs_reason_index(reason);
    if (ri < PX_OBS_REASONS)
        px_obs_add(&l->albd[ri], 1);
    px_obs_add(&l->bytes_in, rec->bytes_in);
    px_obs_add(&l->bytes_out, rec->bytes_out);
    px_obs_observe(&l->duration, now - rec->t0);
    if (rec->gs >= 0 && rec->gs < PX_OBS_GROUPS && rec->t_first)
        px_obs_observe(&b->grp[rec->gs].upstream, (rec->t_up_end ? rec->t_up_end : now) - rec->t0);
    if (rec->ss >= 0 && rec->ss < PX_OBS_SERVERS && rec->t_first)
        px_obs_observe(&b->srv[rec->ss].upstream, (rec->t_up_end ? rec->t_up_end : now) - rec->t0);
    if (rec->ss >= 0 && rec->ss < PX_OBS_SERVERS && rec->upstream_status)
        px_obs_add(&b->srv[rec->ss].responses, 1);
}

void px_alog_end(struct px_alog_rec *rec, int status, const char *albd_reason)
{
    if (!rec->on)
        return;
    uint64_t now = uv_hrtime();
    if (!albd_reason)
        albd_reason = rec->reason;
    count(rec, status, albd_reason, now);
    if (!rec->line) {
        if (rec->sink) /* its line could not be allocated */
            atomic_fetch_add_explicit(&dropped_total, 1, memory_order_relaxed);
        px_alog_discard(rec);
        return;
    }
    if ((status >= 400 || status == 0 || albd_reason) || keep_line(rec->sample2xx)) {
        if (!rec->has_id)
            puts_(rec, ",\"request_id\":null");
        if (!rec->has_group)
            puts_(rec, ",\"server_group\":null");
        if (!rec->has_rule)
            puts_(rec, ",\"rule\":null");
        if (status)
            putf(rec, ",\"status\":%d", status);
        else
            puts_(rec, ",\"status\":null");
        field_cstr(rec, "albd_reason", albd_reason);
        putf(rec, ",\"bytes_in\":%llu,\"bytes_out\":%llu", (unsigned long long)rec->bytes_in,
             (unsigned long long)rec->bytes_out);
        field_cstr(rec, "upstream_addr", rec->upstream[0] ? rec->upstream : NULL);
        if (rec->upstream_status)
            putf(rec, ",\"upstream_status\":%d", rec->upstream_status);
        else
            puts_(rec, ",\"upstream_status\":null");
        field_secs(rec, "upstream_connect_s", rec->t0, rec->t_connect);
        field_secs(rec, "upstream_first_byte_s", rec->t0, rec->t_first);
        field_secs(rec, "upstream_total_s", rec->t0,
                   rec->t_up_end  ? rec->t_up_end
                   : rec->t_first ? now
                                  : 0);
        field_secs(rec, "duration_s", rec->t0, now);
        put(rec, "}\n", 2);
        if (grow(rec, 0))
            sink_put(rec->sink, rec->wid, rec->line, rec->len);
    }
    px_alog_discard(rec);
}

const char *px_alog_reason(int status)
{
    switch (status) {
    case 504:
        return "timeout";
    case 503:
        return "no_healthy_server";
    case 502:
        return "upstream_error";
    case 500:
        return "internal_error";
    case 408:
        return "client_timeout";
    case 413:
        return "limit";
    default:
        return "refused_request";
    }
}
