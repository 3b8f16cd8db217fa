#ifndef ML_CORE_BUF_T_H
#define ML_CORE_BUF_T_H

#include <stddef.h>

struct ml_buf_chunk;

/* A buffer's first chunk, when its spare keeps small ones: a unary gRPC call's message (and its
 * 5-byte prefix) usually fits, and a call in flight then holds this much per direction rather
 * than a whole chunk. */
#define ML_BUF_SMALL_CHUNK_BYTES 512

/* Chunks kept for reuse by the buffers that share it (one per loop: the proxy's calls), so that a
 * warm call path takes its chunks from here instead of the heap; at most max_chunks whole
 * chunks and max_small small ones are kept, the rest go back to the heap. With max_small > 0
 * the buffers start with a small chunk. */
struct ml_buf_spare {
    struct ml_buf_chunk *chunks;
    size_t n_chunks;
    size_t max_chunks;
    struct ml_buf_chunk *small;
    size_t n_small;
    size_t max_small;
};

/* A byte queue as a chain of fixed-size chunks, with a hard cap: appending past max_bytes is
 * refused (-ENOBUFS), never grown. Holds no memory while empty. */
struct ml_buf {
    struct ml_buf_chunk *head; /* oldest bytes; read from here */
    struct ml_buf_chunk *tail; /* appended to here */
    size_t len;                /* bytes held */
    size_t max_bytes;          /* cap on len */
    struct ml_buf_spare *spare; /* where chunks come from and go to; NULL: the heap */
};

#endif
