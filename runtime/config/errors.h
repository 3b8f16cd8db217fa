#ifndef ML_CONFIG_ERRORS_H
#define ML_CONFIG_ERRORS_H

#include "config/errors-t.h"

#include <stdio.h>

void ml_config_errors_init(struct ml_config_errors *e);
void ml_config_errors_deinit(struct ml_config_errors *e);
/* Drops every error, keeps the list usable. */
void ml_config_errors_clear(struct ml_config_errors *e);

/* Adds an error at line (printf-style text). Returns 0, or -ENOMEM (the error is then counted in
 * n_dropped, so a failed add still makes the config invalid). */
int ml_config_errors_add(struct ml_config_errors *e, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Total errors found, kept or not. */
size_t ml_config_errors_count(const struct ml_config_errors *e);
/* Stable sort by line. */
void ml_config_errors_sort(struct ml_config_errors *e);

/* One "FILE:LINE: text" line per error to out, then "FILE: ... and N more errors" if any were
 * dropped. */
void ml_config_errors_print(const struct ml_config_errors *e, const char *file, FILE *out);
/* The same lines joined by '\n' into buf (cap bytes, NUL-terminated), cut before the line that
 * would pass cap with "... and N more". Returns the length written. */
size_t ml_config_errors_join(const struct ml_config_errors *e, const char *file, char *buf,
                             size_t cap);

#endif
