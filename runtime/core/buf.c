#include "core/buf.h"

#include "core/alloc.h"

#include <errno.h>
#include <string.h>

/* Bytes per chunk: a whole HTTP/2 DATA frame of the default size fits in two. */
#define ML_BUF_CHUNK_BYTES 8192

struct ml_buf_chunk {
    struct ml_buf_chunk *next;
    size_t start; /* first unread byte of data[] */
    size_t end;   /* one past the last written byte of data[] */
    uint8_t data[ML_BUF_CHUNK_BYTES];
};

void ml_buf_init(struct ml_buf *b, size_t max_bytes)
{
    ml_buf_init_spare(b, max_bytes, NULL);
}

void ml_buf_init_spare(struct ml_buf *b, size_t max_bytes, struct ml_buf_spare *spare)
{
    b->head = b->tail = NULL;
    b->len = 0;
    b->max_bytes = max_bytes;
    b->spare = spare;
}

void ml_buf_spare_init(struct ml_buf_spare *s, size_t max_chunks)
{
    s->chunks = NULL;
    s->n_chunks = 0;
    s->max_chunks = max_chunks;
}

void ml_buf_spare_deinit(struct ml_buf_spare *s)
{
    while (s->chunks != NULL) {
        struct ml_buf_chunk *next = s->chunks->next;

        ml_free(s->chunks);
        s->chunks = next;
    }
    s->n_chunks = 0;
}

static struct ml_buf_chunk *chunk_new(struct ml_buf *b)
{
    struct ml_buf_spare *s = b->spare;
    struct ml_buf_chunk *c;

    if (s != NULL && s->chunks != NULL) {
        c = s->chunks;
        s->chunks = c->next;
        s->n_chunks--;
        return c;
    }
    return ml_malloc(sizeof(*c));
}

static void chunk_free(struct ml_buf *b, struct ml_buf_chunk *c)
{
    struct ml_buf_spare *s = b->spare;

    if (s != NULL && s->n_chunks < s->max_chunks) {
        c->next = s->chunks;
        s->chunks = c;
        s->n_chunks++;
        return;
    }
    ml_free(c);
}

void ml_buf_deinit(struct ml_buf *b)
{
    struct ml_buf_chunk *c = b->head;

    while (c != NULL) {
        struct ml_buf_chunk *next = c->next;
        chunk_free(b, c);
        c = next;
    }
    b->head = b->tail = NULL;
    b->len = 0;
}

int ml_buf_append(struct ml_buf *b, const uint8_t *p, size_t n)
{
    struct ml_buf_chunk *fresh = NULL, **link = &fresh, *c;
    size_t room = b->tail != NULL ? ML_BUF_CHUNK_BYTES - b->tail->end : 0, take;

    if (n > b->max_bytes - b->len) {
        return -ENOBUFS;
    }
    /* Allocate every chunk needed first, so that a failure appends nothing. */
    for (size_t have = room; have < n; have += ML_BUF_CHUNK_BYTES) {
        if ((c = chunk_new(b)) == NULL) {
            while (fresh != NULL) {
                c = fresh->next;
                chunk_free(b, fresh);
                fresh = c;
            }
            return -ENOMEM;
        }
        c->next = NULL;
        c->start = c->end = 0;
        *link = c;
        link = &c->next;
    }
    b->len += n;
    if (room > 0) {
        take = room < n ? room : n;
        memcpy(b->tail->data + b->tail->end, p, take);
        b->tail->end += take;
        p += take;
        n -= take;
    }
    for (c = fresh; c != NULL; c = c->next) {
        take = n < ML_BUF_CHUNK_BYTES ? n : ML_BUF_CHUNK_BYTES;
        memcpy(c->data, p, take);
        c->end = take;
        p += take;
        n -= take;
        if (b->tail != NULL) {
            b->tail->next = c;
        } else {
            b->head = c;
        }
        b->tail = c;
    }
    return 0;
}

size_t ml_buf_read(struct ml_buf *b, uint8_t *out, size_t cap)
{
    size_t done = 0;

    while (done < cap && b->head != NULL) {
        struct ml_buf_chunk *c = b->head;
        size_t take = c->end - c->start;

        if (take > cap - done) {
            take = cap - done;
        }
        memcpy(out + done, c->data + c->start, take);
        c->start += take;
        done += take;
        if (c->start == c->end) {
            b->head = c->next;
            if (b->head == NULL) {
                b->tail = NULL;
            }
            chunk_free(b, c);
        }
    }
    b->len -= done;
    return done;
}
