/* The one place albd prints diagnostics. Thread-safe; one line per call,
 * written with a single write(2) so lines from workers never interleave.
 * Never pass secret material (keys, tokens) to it. Used by agent/ and
 * proxy/ (the reconciler never logs: its errors are values). Its names keep
 * the px_ prefix they had when it lived in proxy/: some 70 call sites in
 * files other work is rewriting would otherwise change for a rename. */
#ifndef ALBD_COMMON_LOG_H
#define ALBD_COMMON_LOG_H

enum px_log_level { PX_LOG_ERROR, PX_LOG_WARN, PX_LOG_INFO, PX_LOG_DEBUG };

/* Messages above this level are dropped. Default PX_LOG_INFO. */
void px_log_set_level(enum px_log_level level);
enum px_log_level px_log_get_level(void);

void px_log(enum px_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define px_log_error(...) px_log(PX_LOG_ERROR, __VA_ARGS__)
#define px_log_warn(...) px_log(PX_LOG_WARN, __VA_ARGS__)
#define px_log_info(...) px_log(PX_LOG_INFO, __VA_ARGS__)
#define px_log_debug(...)                                                                          \
    do {                                                                                           \
        if (px_log_get_level() >= PX_LOG_DEBUG)                                                    \
            px_log(PX_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
