/* Log sink: "meshlet LEVEL message" on stderr, written with one write() so lines from a
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

void ml_log_write(int level, const char *fmt, ...)
{
    char line[ML_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int rv;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    rv = snprintf(line + n, sizeof(line) - n, ".%03ldZ meshlet %s: ", ts.tv_nsec / 1000000L,
                  ml_log_level_name(level));
    if (rv > 0) {
        n += (size_t)rv < sizeof(line) - n ? (size_t)rv : sizeof(line) - n - 1;
    }
    va_start(ap, fmt);
    rv = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (rv > 0) {
        n += (size_t)rv < sizeof(line) - n ? (size_t)rv : sizeof(line) - n - 1;
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
