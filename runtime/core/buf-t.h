#ifndef ML_CORE_BUF_T_H
#define ML_CORE_BUF_T_H

#include <stddef.h>

struct ml_buf_chunk;

/* A byte queue as a chain of fixed-size chunks, with a hard cap: appending past max_bytes is
 * refused (-ENOBUFS), never grown. Holds no memory while empty. */
struct ml_buf {
    struct ml_buf_chunk *head; /* oldest bytes; read from here */
    struct ml_buf_chunk *tail; /* appended to here */
    size_t len;                /* bytes held */
    size_t max_bytes;          /* cap on len */
};

#endif
