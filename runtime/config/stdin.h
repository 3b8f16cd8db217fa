/* `meshlet check -`: a config read from standard input, checked like a file. */
#ifndef ML_CONFIG_STDIN_H
#define ML_CONFIG_STDIN_H

#include "config/errors-t.h"
#include "config/snapshot-t.h"

/* Reads fd to its end (at most CONFIG_ML_MAX_CONFIG_BYTES) and loads the text as a local config.
 * Returns what ml_config_load_file does: 0 and *out; -EINVAL with the errors in errs; or the
 * code of a read that failed or passed the cap (-EFBIG), with one line-0 error saying why. */
int ml_config_load_fd(int fd, struct ml_config_errors *errs, struct ml_snapshot **out);

#endif
