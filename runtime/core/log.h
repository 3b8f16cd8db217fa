/* Logging: one line per event on stderr, level-checked before the arguments are evaluated.
 * Levels above CONFIG_ML_LOG_LEVEL_MAX are compiled out. */
#ifndef ML_CORE_LOG_H
#define ML_CORE_LOG_H

#include "meshlet_config.h"

enum ml_log_level {
    ML_LOG_LEVEL_ERR = 0,
    ML_LOG_LEVEL_WRN = 1,
    ML_LOG_LEVEL_INF = 2,
    ML_LOG_LEVEL_DBG = 3,
};

/* The level in force; set once from [node] log, read everywhere. The only process-wide mutable:
 * it is a setting of the process (stderr), not state of a loop. */
extern int ml_log_level;

void ml_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "error" | "warn" | "info" | "debug" → level; -EINVAL for anything else. */
int ml_log_level_parse(const char *name);
const char *ml_log_level_name(int level);

#define ML_LOG_AT(lvl, ...)                                                                        \
    do {                                                                                           \
        if ((lvl) <= CONFIG_ML_LOG_LEVEL_MAX && (lvl) <= ml_log_level) {                           \
            ml_log_write((lvl), __VA_ARGS__);                                                      \
        }                                                                                          \
    } while (0)

#define ML_LOG_ERR(...) ML_LOG_AT(ML_LOG_LEVEL_ERR, __VA_ARGS__)
#define ML_LOG_WRN(...) ML_LOG_AT(ML_LOG_LEVEL_WRN, __VA_ARGS__)
#define ML_LOG_INF(...) ML_LOG_AT(ML_LOG_LEVEL_INF, __VA_ARGS__)
#define ML_LOG_DBG(...) ML_LOG_AT(ML_LOG_LEVEL_DBG, __VA_ARGS__)

#endif
