/* Log sink: "TIME meshlet LEVEL: message" on stderr, written with one write() so lines from a
 * process never interleave mid-line; or one datagram per line to syslog (core/log.h). */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

_Atomic int ml_log_level = ML_LOG_LEVEL_INF;

/* The worker whose thread logs (ml_log_set_worker); 0 on the node's own loop. */
static _Thread_local unsigned int log_worker;

void ml_log_set_worker(unsigned int worker)
{
    log_worker = worker;
}

/* Guards the syslog socket and its state in sink: with [node] workers > 1 several loops log at
 * once. Taken only to write a line to syslog, never on a path that counts calls. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;

/* The sink, like ml_log_level a setting of the process (its stderr, its syslog socket), not state
 * of a loop. */
static struct {
    int target;         /* enum ml_log_target */
    int syslog_fd;      /* connected datagram socket; -1: not (yet) connected */
    bool syslog_failed; /* the last line could not go to syslog (already said on stderr) */
    int journal;        /* stderr is the journal: -1 not checked yet, 0 no, 1 yes */
} sink = {ML_LOG_TARGET_STDERR, -1, false, -1};

/* syslog(3)'s facility daemon, and the journal's and syslog's severities per level. */
#define ML_LOG_FACILITY_DAEMON (3 << 3)
static const int level_severity[] = {3 /* err */, 4 /* warning */, 6 /* info */, 7 /* debug */};

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

static int severity(int level)
{
    return level < 0 ? 3 : level > ML_LOG_LEVEL_DBG ? 7 : level_severity[level];
}

/* systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it connected stdout/stderr to; only if
 * our stderr is still that stream are "<N>" prefixes understood (a shell redirect undoes it). */
static bool stderr_is_journal(void)
{
    const char *v;
    unsigned long long dev, ino;
    struct stat st;

    if (sink.journal < 0) {
        v = getenv("JOURNAL_STREAM");
        sink.journal = v != NULL && sscanf(v, "%llu:%llu", &dev, &ino) == 2 &&
                       fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
                       (unsigned long long)st.st_ino == ino;
    }
    return sink.journal == 1;
}

static void write_stderr(const char *line, size_t n)
{
    /* stderr may be a pipe that is gone; a log line is not worth dying for. */
    if (write(STDERR_FILENO, line, n) < 0 && errno == EINTR) {
        (void)!write(STDERR_FILENO, line, n);
    }
}

static const char *syslog_path(void)
{
    const char *p = getenv(ML_LOG_SYSLOG_PATH_ENV);

    return p != NULL && *p != '\0' ? p : ML_LOG_SYSLOG_PATH;
}

static int syslog_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = syslog_path();
    int fd, rv;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path));
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
        return -errno;
    }
    if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rv = -errno;
        close(fd);
        return rv;
    }
    sink.syslog_fd = fd;
    return 0;
}

/* One datagram; a syslogd that restarted (ECONNREFUSED, ENOTCONN) gets one reconnect. Never
 * blocks: a full socket is a failure like any other (the line goes to stderr). */
static int syslog_send(const char *dgram, size_t n)
{
    int rv;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (sink.syslog_fd < 0 && (rv = syslog_connect()) < 0) {
            return rv;
        }
        if (send(sink.syslog_fd, dgram, n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
            return 0;
        }
        rv = -errno;
        if (rv != -ECONNREFUSED && rv != -ENOTCONN) {
            return rv;
        }
        close(sink.syslog_fd);
        sink.syslog_fd = -1;
    }
    return rv;
}

/* Log times, the saved config's age and certificate dates are time_t: a 32-bit one wraps in 2038,
 * within a gateway's years in the field (boards/linux-gnu.cmake gives the 32-bit boards 64). */
_Static_assert(sizeof(time_t) >= 8, "meshlet needs a 64-bit time_t (-D_TIME_BITS=64)");

/* msg[0..m): the message, one line already. Returns 0 when syslog took it. */
static int write_syslog(int level, const char *msg, size_t m)
{
    char dgram[ML_LOG_LINE_MAX + 64], note[ML_LOG_LINE_MAX];
    time_t now = time(NULL);
    struct tm tm;
    size_t n;
    int rv;

    localtime_r(&now, &tm);
    rv = snprintf(dgram, sizeof(dgram), "<%d>", ML_LOG_FACILITY_DAEMON | severity(level));
    n = (size_t)rv;
    n += strftime(dgram + n, sizeof(dgram) - n, "%b %e %H:%M:%S", &tm);
    rv = snprintf(dgram + n, sizeof(dgram) - n, " meshlet[%ld]: %.*s", (long)getpid(), (int)m, msg);
    n += rv < 0 ? 0 : (size_t)rv < sizeof(dgram) - n ? (size_t)rv : sizeof(dgram) - n - 1;
    pthread_mutex_lock(&sink_lock);
    if ((rv = syslog_send(dgram, n)) == 0) {
        sink.syslog_failed = false;
        pthread_mutex_unlock(&sink_lock);
        return 0;
    }
    if (sink.syslog_failed) {
        pthread_mutex_unlock(&sink_lock);
    } else {
        sink.syslog_failed = true;
        pthread_mutex_unlock(&sink_lock);
        rv = snprintf(note, sizeof(note),
                      "meshlet: log_target = syslog: %s: %s: the log goes to stderr until syslog "
                      "takes it again\n",
                      syslog_path(), strerror(-rv));
        write_stderr(note, rv < 0 ? 0 : (size_t)rv < sizeof(note) ? (size_t)rv : sizeof(note) - 1);
    }
    return -EIO;
}

void ml_log_target_set(int target)
{
    sink.target = target;
    if (target != ML_LOG_TARGET_SYSLOG && sink.syslog_fd >= 0) {
        close(sink.syslog_fd);
        sink.syslog_fd = -1;
    }
}

static void write_line(int level, const char *suffix, const char *fmt, va_list ap)
{
    char line[ML_LOG_LINE_MAX], msg[ML_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n = 0, m, body;
    int rv;

    if (sink.target == ML_LOG_TARGET_STDERR && stderr_is_journal()) {
        /* The journal keeps its own time; the rest of the line is as elsewhere. */
        n = (size_t)snprintf(line, sizeof(line), "<%d>", severity(level));
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n += strftime(line + n, sizeof(line) - n, "%Y-%m-%dT%H:%M:%S", &tm);
    rv = snprintf(line + n, sizeof(line) - n, ".%03ldZ meshlet %s: ", ts.tv_nsec / 1000000L,
                  ml_log_level_name(level));
    if (rv > 0) {
        n += (size_t)rv < sizeof(line) - n ? (size_t)rv : sizeof(line) - n - 1;
    }
    body = n;
    if (log_worker > 0 && n < sizeof(line) - 1) {
        /* [node] workers > 1: which loop said it (worker 0, the node's own, says nothing) */
        rv = snprintf(line + n, sizeof(line) - n, "worker %u: ", log_worker);
        n += rv < 0 ? 0 : (size_t)rv < sizeof(line) - n ? (size_t)rv : sizeof(line) - n - 1;
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
    /* syslog stamps the time and the priority itself: it gets the message only. */
    if (sink.target == ML_LOG_TARGET_SYSLOG && write_syslog(level, line + body, n - body) == 0) {
        return;
    }
    line[n++] = '\n';
    write_stderr(line, n);
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
