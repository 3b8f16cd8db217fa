/* Log sink: "TIME meshlet LEVEL: message" on stderr, written with one write() so lines from a
 * process never interleave mid-line. */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int ml_log_level = ML_LOG_LEVEL_INF;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Longest line written; longer messages are cut (never a heap allocation on the log path). */
#define ML_LOG_LINE_MAX 1024

/* Copies src[0..n) to dst (cap bytes, NUL-terminated) with every control byte as \xHH, so a
 * message is one line whatever it quotes. Returns the length written. */
static size_t copy_one_line(char *dst, size_t cap, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;

    for (size_t i = 0; i < n && k + 4 < cap; i++) {
        unsigned char c = (unsigned char)src[i];

        if (c < ' ' || c == 0x7f) {
            dst[k++] = '\\';
            dst[k++] = 'x';
            dst[k++] = hex[c >> 4];
            dst[k++] = hex[c & 15];
        } else {
            dst[k++] = (char)c;
        }
    }
    dst[k] = '\0';
    return k;
}

static void write_line(int level, const char *suffix, const char *fmt, va_list ap)
{
    char line[ML_LOG_LINE_MAX], msg[ML_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n, m;
    int rv;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    rv = snprintf(line + n, sizeof(line) - n, ".%03ldZ meshlet %s: ", ts.tv_nsec / 1000000L,
                  ml_log_level_name(level));
    if (rv > 0) {
        n += (size_t)rv < sizeof(line) - n ? (size_t)rv : sizeof(line) - n - 1;
    }
    rv = vsnprintf(msg, sizeof(msg), fmt, ap);
    m = rv < 0 ? 0 : (size_t)rv < sizeof(msg) ? (size_t)rv : sizeof(msg) - 1;
    n += copy_one_line(line + n, sizeof(line) - n, msg, m);
    if (suffix != NULL && n < sizeof(line) - 1) {
        rv = snprintf(line + n, sizeof(line) - n, "%s", suffix);
        n += rv < 0 ? 0 : (size_t)rv < sizeof(line) - n ? (size_t)rv : sizeof(line) - n - 1;
    }
    if (n >= sizeof(line) - 1) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    /* stderr may be a pipe that is gone; a log line is not worth dying for. */
    if (write(STDERR_FILENO, line, n) < 0 && errno == EINTR) {
        (void)!write(STDERR_FILENO, line, n);
    }
}

void ml_log_write(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line(level, NULL, fmt, ap);
    va_end(ap);
}

bool ml_log_limit_take(struct ml_log_limit *lim, uint64_t now_ms)
{
    lim->events++;
    if (lim->lines == 0 || now_ms - lim->window_start_ms >= ML_LOG_LIMIT_WINDOW_MS) {
        lim->window_start_ms = now_ms;
        lim->lines = 0;
    }
    if (lim->lines < ML_LOG_LIMIT_LINES) {
        lim->lines++;
        return true;
    }
    if (lim->suppressed++ == 0) {
        lim->suppressed_since_ms = now_ms;
    }
    return false;
}

void ml_log_write_limited(struct ml_log_limit *lim, int level, const char *fmt, ...)
{
    char suffix[96];
    uint64_t ms;
    va_list ap;

    suffix[0] = '\0';
    if (lim->suppressed > 0) {
        ms = ml_time_now_ms() - lim->suppressed_since_ms;
        snprintf(suffix, sizeof(suffix),
                 " (%llu more like this in the last %llu.%01llu s not logged)",
                 (unsigned long long)lim->suppressed, (unsigned long long)(ms / 1000),
                 (unsigned long long)(ms % 1000 / 100));
        lim->suppressed = 0;
    }
    va_start(ap, fmt);
    write_line(level, suffix[0] != '\0' ? suffix : NULL, fmt, ap);
    va_end(ap);
}

int ml_log_level_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    return -EINVAL;
}

const char *ml_log_level_name(int level)
{
    if (level < 0 || level > ML_LOG_LEVEL_DBG) {
        return "?";
    }
    return level_names[level];
}
