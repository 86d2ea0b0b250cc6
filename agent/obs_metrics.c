/* Observability metrics (see obs_metrics.h). Names follow Prometheus'
 * conventions: base units (seconds, bytes), _total for counters, the
 * standard process_* names of client libraries' process collectors. */
#include "agent/obs_metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "proxy/alog.h"

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

static void agent_metrics(struct obuf *b, struct ag_agent *a)
{
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

char *ag_obs_metrics(struct ag_agent *a)
{
    struct obuf b = {0};
    process_metrics(&b);
    agent_metrics(&b, a);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
