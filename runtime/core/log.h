/* The node's log: one line per event on stderr, "TIME meshlet LEVEL: message", level-checked
 * before the arguments are evaluated. Levels above CONFIG_ML_LOG_LEVEL_MAX are compiled out. A
 * message is always one line: a newline or other control byte in it (a peer's text, a path) is
 * written as \xHH. The access log is another stream (core/access_log.h). */
#ifndef ML_CORE_LOG_H
#define ML_CORE_LOG_H

#include "core/timer.h" /* ml_time_now_ms, for ML_LOG_LIMITED */
#include "meshlet_config.h"

#include <stdbool.h>
#include <stdint.h>

enum ml_log_level {
    ML_LOG_LEVEL_ERR = 0,
    ML_LOG_LEVEL_WRN = 1,
    ML_LOG_LEVEL_INF = 2,
    ML_LOG_LEVEL_DBG = 3,
};

/* Where the lines go ([node] log_target; the choices' order in schema.def). On stderr, when
 * systemd's journal is that stderr ($JOURNAL_STREAM names its device:inode), each line starts with
 * the journal's "<N>" priority. To syslog: one RFC 3164 datagram per line, "<PRI>Mmm dd hh:mm:ss
 * meshlet[PID]: message", facility daemon; when the syslog socket cannot be reached the line goes
 * to stderr instead and the first such failure says so there, once until syslog answers again. */
enum ml_log_target {
    ML_LOG_TARGET_STDERR = 0,
    ML_LOG_TARGET_SYSLOG = 1,
};

/* The syslog socket; the environment variable overrides it, for tests only. */
#define ML_LOG_SYSLOG_PATH "/dev/log"
#define ML_LOG_SYSLOG_PATH_ENV "MESHLET_SYSLOG_SOCKET"

/* Sets where the lines go from now on (start of the node; it is a bootstrap key). */
void ml_log_target_set(int target);

/* The level in force; set once from [node] log, read everywhere. The only process-wide mutable:
 * it is a setting of the process (stderr), not state of a loop. Atomic: with [node] workers > 1
 * every loop reads it while worker 0 applies a config. */
extern _Atomic int ml_log_level;

void ml_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Lines this thread writes from now on start "worker K: " (K > 0; 0: no prefix): [node]
 * workers > 1, set by node/workers.c on each worker's thread and around making its proxy. */
void ml_log_set_worker(unsigned int worker);

/* A budget of lines for one kind of event that can come once per call (a call that fails, a
 * connect that fails): a dead backend under load must not write a line per call (flash wear, and
 * the lines that matter drown). At most ML_LOG_LIMIT_LINES lines per ML_LOG_LIMIT_WINDOW_MS; the
 * events past that are counted, and the next line logged ends "(N more like this in the last
 * S s not logged)". It lives in the context that sees the events (no mutable globals);
 * zero-initialised is a fresh budget. */
#define ML_LOG_LIMIT_LINES 5
#define ML_LOG_LIMIT_WINDOW_MS 1000u

struct ml_log_limit {
    uint64_t window_start_ms; /* ml_time_now_ms() at the window's first line */
    uint32_t lines;           /* logged in this window */
    uint64_t suppressed;      /* not logged since the last line that was */
    uint64_t suppressed_since_ms;
    uint64_t events; /* every event offered, logged or not */
};

/* Counts an event; true when its line may be written now. */
bool ml_log_limit_take(struct ml_log_limit *lim, uint64_t now_ms);
/* ml_log_write, with the "N more" summary of lim appended (and reset) when lines were held back. */
void ml_log_write_limited(struct ml_log_limit *lim, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "error" | "warn" | "info" | "debug" → level; -EINVAL for anything else. */
int ml_log_level_parse(const char *name);
const char *ml_log_level_name(int level);

#define ML_LOG_AT(lvl, ...)                                                                        \
    do {                                                                                           \
        if ((lvl) <= CONFIG_ML_LOG_LEVEL_MAX && (lvl) <= ml_log_level) {                           \
            ml_log_write((lvl), __VA_ARGS__);                                                      \
        }                                                                                          \
    } while (0)

/* ML_LOG_AT for an event of lim's kind: counted always, written within lim's budget. */
#define ML_LOG_LIMITED(lim, lvl, ...)                                                              \
    do {                                                                                           \
        if ((lvl) <= CONFIG_ML_LOG_LEVEL_MAX && (lvl) <= ml_log_level) {                           \
            if (ml_log_limit_take((lim), ml_time_now_ms())) {                                      \
                ml_log_write_limited((lim), (lvl), __VA_ARGS__);                                   \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define ML_LOG_ERR(...) ML_LOG_AT(ML_LOG_LEVEL_ERR, __VA_ARGS__)
#define ML_LOG_WRN(...) ML_LOG_AT(ML_LOG_LEVEL_WRN, __VA_ARGS__)
#define ML_LOG_INF(...) ML_LOG_AT(ML_LOG_LEVEL_INF, __VA_ARGS__)
#define ML_LOG_DBG(...) ML_LOG_AT(ML_LOG_LEVEL_DBG, __VA_ARGS__)

#endif
