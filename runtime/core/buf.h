#ifndef ML_CORE_BUF_H
#define ML_CORE_BUF_H

#include "core/buf-t.h"

#include <stddef.h>
#include <stdint.h>

/* Caller embeds the buffer; nothing is allocated until the first append. */
void ml_buf_init(struct ml_buf *b, size_t max_bytes);
/* The same, with chunks from (and back to) spare, which must outlive b. */
void ml_buf_init_spare(struct ml_buf *b, size_t max_bytes, struct ml_buf_spare *spare);
/* Drops whatever is held. */
void ml_buf_deinit(struct ml_buf *b);

/* Appends p[0..n) (copied). 0; -ENOBUFS when it would go past max_bytes (nothing appended);
 * -ENOMEM (nothing appended). */
int ml_buf_append(struct ml_buf *b, const uint8_t *p, size_t n);
/* Moves up to cap of the oldest bytes into out; returns how many. */
size_t ml_buf_read(struct ml_buf *b, uint8_t *out, size_t cap);

/* Caller embeds the spare; it holds nothing until a buffer gives a chunk back. At most
 * max_chunks whole and max_small small chunks are kept (buf-t.h). */
void ml_buf_spare_init(struct ml_buf_spare *s, size_t max_chunks, size_t max_small);
/* Frees the chunks kept; no buffer may use s any more. */
void ml_buf_spare_deinit(struct ml_buf_spare *s);

static inline size_t ml_buf_len(const struct ml_buf *b)
{
    return b->len;
}

#endif
