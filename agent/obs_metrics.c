/* Observability metrics (see obs_metrics.h). Names follow Prometheus'
 * conventions: base units (seconds, bytes), _total for counters, the
 * standard process_* names of client libraries' process collectors. */
#include "agent/obs_metrics.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "proxy/alog.h"
#include "proxy/obs.h"

struct obuf {
    char *p;
    size_t len, cap;
    bool oom;
};

__attribute__((format(printf, 2, 3))) static void ob_printf(struct obuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* A label value as the exposition format needs it: backslash, quote and
 * newline escaped. Names from manifests are DNS-like, but say so once. */
static void ob_label(struct obuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            ob_printf(b, "\\%c", *v);
        else if (*v == '\n')
            ob_printf(b, "\\n");
        else
            ob_printf(b, "%c", *v);
    }
}

static void help(struct obuf *b, const char *name, const char *type, const char *text)
{
    ob_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* Start time (seconds since the epoch), from /proc/self/stat's starttime
 * (field 22, clock ticks after boot) and the boot time in /proc/stat. */
static double process_start_time(void)
{
    static double cached;
    if (cached > 0)
        return cached;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (!p)
        return 0;
    unsigned long long start = 0;
    /* After ")": state is field 3; starttime is field 22. */
    p++;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p || sscanf(p + 1, "%llu", &start) != 1)
        return 0;
    unsigned long long btime = 0;
    f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (!btime || hz <= 0)
        return 0;
    cached = (double)btime + (double)start / (double)hz;
    return cached;
}

static long long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long long size = 0, rss = 0;
    int ok = fscanf(f, "%lld %lld", &size, &rss);
    fclose(f);
    return ok == 2 ? rss * sysconf(_SC_PAGESIZE) : -1;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void process_metrics(struct obuf *b)
{
    help(b, "albd_build_info", "gauge", "The version and commit albd was built from (always 1).");
    ob_printf(b, "albd_build_info{version=\"");
    ob_label(b, ALBD_VERSION);
    ob_printf(b, "\",commit=\"");
    ob_label(b, ag_cli_commit());
    ob_printf(b, "\"} 1\n");
    double st = process_start_time();
    if (st > 0) {
        help(b, "process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch, in seconds.");
        ob_printf(b, "process_start_time_seconds %.2f\n", st);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        help(b, "process_cpu_seconds_total", "counter", "User and system CPU time, in seconds.");
        ob_printf(b, "process_cpu_seconds_total %.6f\n",
                  (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    }
    long long rss = resident_bytes();
    if (rss >= 0) {
        help(b, "process_resident_memory_bytes", "gauge", "Resident memory size, in bytes.");
        ob_printf(b, "process_resident_memory_bytes %lld\n", rss);
    }
    long fds = open_fds();
    if (fds >= 0) {
        help(b, "process_open_fds", "gauge", "Open file descriptors.");
        ob_printf(b, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        help(b, "process_max_fds", "gauge", "The limit of open file descriptors.");
        ob_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

/* One series per certificate of the running configuration (bounded by
 * the manifests). */
static void certificate_metrics(struct obuf *b, const struct ag_agent *a)
{
    if (!a->running || a->running->n_certificates == 0)
        return;
    help(b, "albd_certificate_not_after_seconds", "gauge",
         "When each certificate of the running configuration expires (Unix time).");
    for (size_t i = 0; i < a->running->n_certificates; i++) {
        const struct rc_certificate *c = a->running->certificates[i];
        ob_printf(b, "albd_certificate_not_after_seconds{certificate=\"");
        ob_label(b, c->meta.name);
        ob_printf(b, "\"} %lld\n", (long long)c->not_after);
    }
}

static void agent_metrics(struct obuf *b, struct ag_agent *a)
{
    certificate_metrics(b, a);
    help(b, "albd_last_successful_reconcile_timestamp_seconds", "gauge",
         "When the running configuration was last applied successfully (0: never).");
    ob_printf(b, "albd_last_successful_reconcile_timestamp_seconds %lld\n",
              (long long)a->last_applied);
    help(b, "albd_access_log_lines_total", "counter", "Access log lines written.");
    ob_printf(b, "albd_access_log_lines_total %llu\n", (unsigned long long)px_alog_lines_total());
    help(b, "albd_access_log_dropped_total", "counter",
         "Access log lines dropped because their destination could not keep up or failed "
         "(full disk, blocked pipe).");
    ob_printf(b, "albd_access_log_dropped_total %llu\n",
              (unsigned long long)px_alog_dropped_total());
}

static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Sums of one listener's, group's or server's counters over the workers. */
#define SUM(var, expr)                                                                             \
    uint64_t var = 0;                                                                              \
    for (int w_ = 0; w_ < nw; w_++) {                                                              \
        const struct px_obs_worker *b_ = px_obs_worker(w_);                                        \
        var += ld(&b_->expr);                                                                      \
    }

/* The labels of one histogram series: label="value" and, when label2 is
 * not NULL, label2="value2". */
static void hist_labels(struct obuf *b, const char *label, const char *value, const char *label2,
                        const char *value2)
{
    ob_printf(b, "%s=\"", label);
    ob_label(b, value);
    ob_printf(b, "\"");
    if (label2) {
        ob_printf(b, ",%s=\"", label2);
        ob_label(b, value2);
        ob_printf(b, "\"");
    }
}

/* One histogram series summed over the nw workers' px_obs_hist at offset
 * off of their blocks, labelled as hist_labels says. */
static void hist(struct obuf *b, const char *name, const char *label, const char *value,
                 const char *label2, const char *value2, int nw, size_t off)
{
    static const double bounds[PX_OBS_BUCKETS] = PX_OBS_BUCKET_BOUNDS;
    uint64_t buckets[PX_OBS_BUCKETS] = {0}, count = 0, sum = 0;
    for (int w = 0; w < nw; w++) {
        const struct px_obs_hist *h =
            (const struct px_obs_hist *)((const char *)px_obs_worker(w) + off);
        for (int i = 0; i < PX_OBS_BUCKETS; i++)
            buckets[i] += ld(&h->bucket[i]);
        count += ld(&h->count);
        sum += ld(&h->sum_ns);
    }
    uint64_t cum = 0;
    for (int i = 0; i < PX_OBS_BUCKETS; i++) {
        cum += buckets[i];
        ob_printf(b, "%s_bucket{", name);
        hist_labels(b, label, value, label2, value2);
        ob_printf(b, ",le=\"%g\"} %llu\n", bounds[i], (unsigned long long)cum);
    }
    ob_printf(b, "%s_bucket{", name);
    hist_labels(b, label, value, label2, value2);
    ob_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)count);
    ob_printf(b, "%s_sum{", name);
    hist_labels(b, label, value, label2, value2);
    ob_printf(b, "} %.9f\n", (double)sum / 1e9);
    ob_printf(b, "%s_count{", name);
    hist_labels(b, label, value, label2, value2);
    ob_printf(b, "} %llu\n", (unsigned long long)count);
}

/* The slots of kind that have a name (registered, or the overflow slot). */
static int slots(enum px_obs_kind kind, int *out, int max)
{
    int n = 0, used = px_obs_used(kind);
    for (int i = 0; i < used && n < max; i++)
        out[n++] = i;
    int limit = kind == PX_OBS_LISTENER ? PX_OBS_LISTENERS
                : kind == PX_OBS_GROUP  ? PX_OBS_GROUPS
                                        : PX_OBS_SERVERS;
    if (used >= limit - 1 && n < max)
        out[n++] = limit - 1;
    return n;
}

static void start_series(struct obuf *b, const char *name, const char *label, const char *value)
{
    ob_printf(b, "%s{%s=\"", name, label);
    ob_label(b, value);
    ob_printf(b, "\"");
}

static void listener_metrics(struct obuf *b, int nw)
{
    static int sl[PX_OBS_SERVERS];
    int n = slots(PX_OBS_LISTENER, sl, PX_OBS_LISTENERS);
    help(b, "albd_http_requests_total", "counter",
         "Requests finished (answered, or abandoned by the client), by listener.");
    for (int i = 0; i < n; i++) {
        SUM(v, lis[sl[i]].requests);
        start_series(b, "albd_http_requests_total", "listener",
                     px_obs_name(PX_OBS_LISTENER, sl[i]));
        ob_printf(b, "} %llu\n", (unsigned long long)v);
    }
    help(b, "albd_http_responses_total", "counter",
         "Responses by listener and status class (code=\"none\": the client left before one).");
    for (int i = 0; i < n; i++)
        for (int c = 0; c <= 5; c++) {
            SUM(v, lis[sl[i]].responses[c]);
            start_series(b, "albd_http_responses_total", "listener",
                         px_obs_name(PX_OBS_LISTENER, sl[i]));
            if (c)
                ob_printf(b, ",code=\"%dxx\"} %llu\n", c, (unsigned long long)v);
            else
                ob_printf(b, ",code=\"none\"} %llu\n", (unsigned long long)v);
        }
    help(b, "albd_http_albd_answered_total", "counter",
         "Requests albd answered or ended itself, by listener and albd_reason (as in the access "
         "log).");
    for (int i = 0; i < n; i++)
        for (int r = 0; r < PX_OBS_REASONS; r++) {
            SUM(v, lis[sl[i]].albd[r]);
            start_series(b, "albd_http_albd_answered_total", "listener",
                         px_obs_name(PX_OBS_LISTENER, sl[i]));
            ob_printf(b, ",reason=\"%s\"} %llu\n", px_obs_reason_name(r), (unsigned long long)v);
        }
    help(b, "albd_http_request_body_bytes_total", "counter",
         "Request body bytes received (WebSocket: client to backend), by listener.");
    for (int i = 0; i < n; i++) {
        SUM(v, lis[sl[i]].bytes_in);
        start_series(b, "albd_http_request_body_bytes_total", "listener",
                     px_obs_name(PX_OBS_LISTENER, sl[i]));
        ob_printf(b, "} %llu\n", (unsigned long long)v);
    }
    help(b, "albd_http_response_body_bytes_total", "counter",
         "Response body bytes sent (WebSocket: backend to client), by listener.");
    for (int i = 0; i < n; i++) {
        SUM(v, lis[sl[i]].bytes_out);
        start_series(b, "albd_http_response_body_bytes_total", "listener",
                     px_obs_name(PX_OBS_LISTENER, sl[i]));
        ob_printf(b, "} %llu\n", (unsigned long long)v);
    }
    help(b, "albd_listener_connections_active", "gauge", "Client connections open, by listener.");
    for (int i = 0; i < n; i++) {
        SUM(v, lis[sl[i]].conns_active);
        start_series(b, "albd_listener_connections_active", "listener",
                     px_obs_name(PX_OBS_LISTENER, sl[i]));
        ob_printf(b, "} %lld\n", (long long)v);
    }
    help(b, "albd_tls_handshakes_total", "counter",
         "TLS handshakes completed, by listener and TLS version.");
    for (int i = 0; i < n; i++)
        for (int t = 0; t < PX_OBS_TLS_VERSIONS; t++) {
            SUM(v, lis[sl[i]].tls_ok[t]);
            start_series(b, "albd_tls_handshakes_total", "listener",
                         px_obs_name(PX_OBS_LISTENER, sl[i]));
            ob_printf(b, ",version=\"%s\"} %llu\n", px_obs_tls_version_name(t),
                      (unsigned long long)v);
        }
    help(b, "albd_tls_handshake_failures_total", "counter",
         "TLS handshakes that failed, by listener, reason and TLS version (the negotiated one, "
         "for protocol_version the client's hello version, unknown before a ClientHello).");
    for (int i = 0; i < n; i++)
        for (int f = 0; f < PX_OBS_TLS_FAILS; f++)
            for (int t = 0; t <= PX_OBS_TLS_VERSIONS; t++) {
                SUM(v, lis[sl[i]].tls_fail[f][t]);
                start_series(b, "albd_tls_handshake_failures_total", "listener",
                             px_obs_name(PX_OBS_LISTENER, sl[i]));
                ob_printf(b, ",reason=\"%s\",version=\"%s\"} %llu\n", px_obs_tls_fail_name(f),
                          px_obs_tls_version_name(t), (unsigned long long)v);
            }
    help(b, "albd_http_request_duration_seconds", "histogram",
         "Time from a request's start (its head, for HTTP/1.1 its pipeline step) to the end of "
         "its response, by listener.");
    for (int i = 0; i < n; i++)
        hist(b, "albd_http_request_duration_seconds", "listener",
             px_obs_name(PX_OBS_LISTENER, sl[i]), NULL, NULL, nw,
             offsetof(struct px_obs_worker, lis) + (size_t)sl[i] * sizeof(struct px_obs_listener) +
                 offsetof(struct px_obs_listener, duration));
}

static void upstream_metrics(struct obuf *b, int nw)
{
    static int sl[PX_OBS_SERVERS];
    int n = slots(PX_OBS_GROUP, sl, PX_OBS_GROUPS);
    help(b, "albd_upstream_retries_total", "counter",
         "Extra backend attempts for a request (failover, or a fresh connection after a pooled "
         "one was closed), by server group.");
    for (int i = 0; i < n; i++) {
        SUM(v, grp[sl[i]].retries);
        start_series(b, "albd_upstream_retries_total", "server_group",
                     px_obs_name(PX_OBS_GROUP, sl[i]));
        ob_printf(b, "} %llu\n", (unsigned long long)v);
    }
    help(b, "albd_upstream_response_duration_seconds", "histogram",
         "Time from a request's start to the end of its backend response, by server group.");
    for (int i = 0; i < n; i++)
        hist(b, "albd_upstream_response_duration_seconds", "server_group",
             px_obs_name(PX_OBS_GROUP, sl[i]), NULL, NULL, nw,
             offsetof(struct px_obs_worker, grp) + (size_t)sl[i] * sizeof(struct px_obs_group) +
                 offsetof(struct px_obs_group, upstream));
    n = slots(PX_OBS_SERVER, sl, PX_OBS_SERVERS);
    help(b, "albd_upstream_server_response_duration_seconds", "histogram",
         "Time from a request's start to the end of its backend response, by server group and "
         "server (address:port).");
    for (int i = 0; i < n; i++) {
        const char *full = px_obs_name(PX_OBS_SERVER, sl[i]);
        const char *slash = strchr(full, '/');
        char grp[256];
        snprintf(grp, sizeof grp, "%.*s", slash ? (int)(slash - full) : (int)strlen(full), full);
        hist(b, "albd_upstream_server_response_duration_seconds", "server_group", grp, "server",
             slash ? slash + 1 : full, nw,
             offsetof(struct px_obs_worker, srv) + (size_t)sl[i] * sizeof(struct px_obs_server) +
                 offsetof(struct px_obs_server, upstream));
    }
    help(b, "albd_upstream_responses_total", "counter",
         "Backend responses, by server group and server (address:port).");
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            help(b, "albd_upstream_connect_failures_total", "counter",
                 "Backend connection attempts that failed, by server group, server and reason.");
        for (int i = 0; i < n; i++) {
            const char *full = px_obs_name(PX_OBS_SERVER, sl[i]);
            const char *slash = strchr(full, '/');
            char grp[256];
            snprintf(grp, sizeof grp, "%.*s", slash ? (int)(slash - full) : (int)strlen(full),
                     full);
            const char *srv = slash ? slash + 1 : full;
            int nf = pass == 0 ? 1 : PX_OBS_CONNECT_FAILS;
            for (int f = 0; f < nf; f++) {
                uint64_t v = 0;
                for (int w = 0; w < nw; w++) {
                    const struct px_obs_server *s = &px_obs_worker(w)->srv[sl[i]];
                    v += pass == 0 ? ld(&s->responses) : ld(&s->connect_fail[f]);
                }
                ob_printf(b, "%s{server_group=\"",
                          pass == 0 ? "albd_upstream_responses_total"
                                    : "albd_upstream_connect_failures_total");
                ob_label(b, grp);
                ob_printf(b, "\",server=\"");
                ob_label(b, srv);
                if (pass == 0)
                    ob_printf(b, "\"} %llu\n", (unsigned long long)v);
                else
                    ob_printf(b, "\",reason=\"%s\"} %llu\n", px_obs_connect_fail_name(f),
                              (unsigned long long)v);
            }
        }
    }
}

char *ag_obs_metrics(struct ag_agent *a)
{
    struct obuf b = {0};
    process_metrics(&b);
    agent_metrics(&b, a);
    int nw = px_obs_n_workers();
    if (nw > 0) {
        listener_metrics(&b, nw);
        upstream_metrics(&b, nw);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
