#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = PX_LOG_INFO;
/* The resolved format (never AUTO once set) and whether lines start with
 * a journald priority; written once at start-up, before any thread. */
static _Atomic int log_format = PX_LOG_FORMAT_TEXT;
static _Atomic bool log_journal;

void px_log_set_level(enum px_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum px_log_level px_log_get_level(void)
{
    return (enum px_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* JOURNAL_STREAM is "device:inode" of the stream systemd connected to
 * journald; it only counts when stderr is still that stream (not
 * redirected by a wrapper script). */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void px_log_set_format(enum px_log_format f)
{
    bool journal = stderr_is_journal();
    if (f == PX_LOG_FORMAT_AUTO)
        f = isatty(STDERR_FILENO) || journal ? PX_LOG_FORMAT_TEXT : PX_LOG_FORMAT_JSON;
    atomic_store_explicit(&log_format, (int)f, memory_order_relaxed);
    atomic_store_explicit(&log_journal, journal, memory_order_relaxed);
}

enum px_log_format px_log_get_format(void)
{
    return (enum px_log_format)atomic_load_explicit(&log_format, memory_order_relaxed);
}

int px_log_parse_format(const char *s)
{
    if (strcmp(s, "text") == 0)
        return PX_LOG_FORMAT_TEXT;
    if (strcmp(s, "json") == 0)
        return PX_LOG_FORMAT_JSON;
    if (strcmp(s, "auto") == 0)
        return PX_LOG_FORMAT_AUTO;
    return -1;
}

/* Appends msg to line[n..cap) as the inside of a JSON string; returns the
 * new length (truncated to fit). Bytes >= 0x80 are copied as they are
 * (albd's messages are ASCII; names from manifests are checked names). */
static size_t json_escape(char *line, size_t n, size_t cap, const char *msg)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p && n + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            line[n++] = '\\';
            line[n++] = (char)*p;
        } else if (*p == '\n') {
            line[n++] = '\\';
            line[n++] = 'n';
        } else if (*p < 0x20 || *p == 0x7f) {
            n += (size_t)snprintf(line + n, cap - n, "\\u%04x", *p);
        } else {
            line[n++] = (char)*p;
        }
    }
    return n;
}

void px_log(enum px_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    /* syslog priorities (sd-daemon(3)): err, warning, info, debug. */
    static const char *const prio[] = {"<3>", "<4>", "<6>", "<7>"};
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        msg[0] = '\0';

    char line[4096 + 64];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    bool journal = atomic_load_explicit(&log_journal, memory_order_relaxed);
    size_t n = 0;
    if (journal)
        n += (size_t)snprintf(line, sizeof line, "%s", prio[level]);
    if (px_log_get_format() == PX_LOG_FORMAT_JSON) {
        n += (size_t)snprintf(line + n, sizeof line - n,
                              "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", when, names[level]);
        n = json_escape(line, n, sizeof line - 3, msg);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        /* journald stamps lines itself. */
        int k = journal ? snprintf(line + n, sizeof line - n, "%s %s", names[level], msg)
                        : snprintf(line + n, sizeof line - n, "%s %s %s", when, names[level], msg);
        n += k < 0 ? 0 : (size_t)k;
        if (n > sizeof line - 2)
            n = sizeof line - 2;
    }
    line[n++] = '\n';
    /* One write per line: atomic enough for stderr pipes and files. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

bool px_log_limit_allow(struct px_log_limit *l, uint64_t now_ms, unsigned *suppressed)
{
    *suppressed = 0;
    if (now_ms - l->window_start >= PX_LOG_LIMIT_WINDOW_MS || l->window_start == 0) {
        *suppressed = l->suppressed;
        l->window_start = now_ms ? now_ms : 1;
        l->count = 0;
        l->suppressed = 0;
    }
    if (l->count < PX_LOG_LIMIT_BURST) {
        l->count++;
        return true;
    }
    l->suppressed++;
    return false;
}
