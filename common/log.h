/* The one place albd prints diagnostics. Thread-safe; one line per call,
 * written with a single write(2) so lines from workers never interleave.
 * Never pass secret material (keys, tokens) to it. Used by agent/ and
 * proxy/ (the reconciler never logs: its errors are values). Its names keep
 * the px_ prefix they had when it lived in proxy/: some 70 call sites in
 * files other work is rewriting would otherwise change for a rename. */
#ifndef ALBD_COMMON_LOG_H
#define ALBD_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum px_log_level { PX_LOG_ERROR, PX_LOG_WARN, PX_LOG_INFO, PX_LOG_DEBUG };

/* Messages above this level are dropped. Default PX_LOG_INFO. */
void px_log_set_level(enum px_log_level level);
enum px_log_level px_log_get_level(void);

/* How lines look: text ("<ts> <level> <message>") for a terminal, JSON
 * ({"ts","level","msg"}) for log collectors; AUTO picks text when stderr
 * is a terminal or journald, JSON otherwise. Under systemd with stderr
 * connected to journald (JOURNAL_STREAM), every line starts with its
 * syslog priority ("<3>" error ... "<7>" debug) and text lines leave the
 * timestamp to journald. Set once at start-up, before threads start. */
enum px_log_format { PX_LOG_FORMAT_AUTO, PX_LOG_FORMAT_TEXT, PX_LOG_FORMAT_JSON };
void px_log_set_format(enum px_log_format f);
enum px_log_format px_log_get_format(void);
/* "text", "json" or "auto" as enum px_log_format, -1 for anything else. */
int px_log_parse_format(const char *s);

void px_log(enum px_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A rate limit for one kind of message of one thread (a static
 * _Thread_local at the call site, zeroed): at most PX_LOG_LIMIT_BURST
 * lines per PX_LOG_LIMIT_WINDOW_MS. px_log_limit_allow says whether to log
 * now; *suppressed is how many were left out in the window that just
 * ended (say so in the next line). */
#define PX_LOG_LIMIT_BURST 5
#define PX_LOG_LIMIT_WINDOW_MS 10000
struct px_log_limit {
    uint64_t window_start;
    unsigned count, suppressed;
};
bool px_log_limit_allow(struct px_log_limit *l, uint64_t now_ms, unsigned *suppressed);

#define px_log_error(...) px_log(PX_LOG_ERROR, __VA_ARGS__)
#define px_log_warn(...) px_log(PX_LOG_WARN, __VA_ARGS__)
#define px_log_info(...) px_log(PX_LOG_INFO, __VA_ARGS__)
#define px_log_debug(...)                                                                          \
    do {                                                                                           \
        if (px_log_get_level() >= PX_LOG_DEBUG)                                                    \
            px_log(PX_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
