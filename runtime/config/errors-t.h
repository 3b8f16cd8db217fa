#ifndef ML_CONFIG_ERRORS_T_H
#define ML_CONFIG_ERRORS_T_H

#include <stddef.h>

/* One error of a config: LINE and the text after "FILE:LINE: " (config/README.md "Errors"). */
struct ml_config_error {
    int line;   /* 1-based; 0 for errors of the whole text (it cannot be read) */
    char *text; /* "[cluster greeter] lb: expected ..., got \"x\"", owned by the list */
};

/* Every error of one check, in line order once sorted. At most CONFIG_ML_CONFIG_MAX_ERRORS are
 * kept; the rest are only counted in n_dropped. */
struct ml_config_errors {
    struct ml_config_error *v;
    size_t n, cap;
    size_t n_dropped;
};

/* A Nack and a failed POST /config carry the error lines cut at this size (config/README.md). */
#define ML_CONFIG_ERRORS_TEXT_MAX 4096

#endif
