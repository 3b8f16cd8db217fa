#ifndef ML_CORE_FILE_H
#define ML_CORE_FILE_H

#include <stddef.h>

/* Reads a whole regular file of at most max_bytes into a new NUL-terminated buffer that the
 * caller frees with free(). Returns 0; -ENOENT, -EACCES, ... (errno of open/read); -EISDIR or
 * -EINVAL for something that is not a regular file; -EFBIG when larger than max_bytes (then
 * *size_out holds the size found); -ENOMEM. */
int ml_file_read_all(const char *path, size_t max_bytes, char **buf_out, size_t *size_out);

#endif
